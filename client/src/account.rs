//! Accounts over HTTP (`/sender/accounts` of the edge): create one (sign-up, or as the
//! administrator), change its password, delete it. The password never leaves the machine: the
//! client asks the edge for its realm, derives the verifiers ([`AccountChange`]) and answers digest
//! challenges (RFC 7616) with the strongest algorithm offered.

use std::time::Duration;

use rcs_core::accounts::AccountChange;
use rcs_core::client::Password;
use rcs_core::digest::Challenge;
use rcs_core::ids::{Entropy, TokenSource};
use rcs_core::service::ACCOUNTS_ROUTE;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

use crate::Error;

/// How a request proves who is asking.
#[derive(Clone, Debug)]
pub enum Authority {
    /// Nobody in particular (sign-up, where the deployment allows it).
    Anyone,
    /// The account's own password (HTTP Digest).
    Password(Password),
    /// The deployment's admin token (`Authorization: Bearer`).
    AdminToken(String),
}

/// What the edge says about its accounts (`GET /sender/accounts`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct AccountsInfo {
    /// The realm verifiers are derived for (the SIP domain).
    pub realm: String,
    /// `open` or `closed`.
    pub sign_up: String,
}

/// The account requests of one edge.
pub struct Accounts {
    base: String,
    http: reqwest::Client,
    ids: TokenSource,
}

impl Accounts {
    /// The accounts of the edge at `server` (`http://127.0.0.1:3000`).
    pub fn new(server: &str, timeout: Duration) -> Result<Self, Error> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::BadServer {
                url: server.to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(Error::HttpClient)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Entropy(e.to_string()))?;
        Ok(Self {
            base,
            http,
            ids: TokenSource::new(Entropy(seed)),
        })
    }

    /// The edge's realm and whether sign-up is open.
    pub async fn info(&self) -> Result<AccountsInfo, Error> {
        let response = self
            .http
            .get(format!("{}{ACCOUNTS_ROUTE}", self.base))
            .send()
            .await
            .map_err(Error::HttpClient)?;
        let status = response.status();
        let body = response.bytes().await.map_err(Error::HttpClient)?;
        if status != StatusCode::OK {
            return Err(http_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|error| Error::Http {
            status: status.as_u16(),
            body: format!("not the accounts document: {error}"),
        })
    }

    /// Creates the account `user` with `password` (sign-up with [`Authority::Anyone`], or as the
    /// administrator).
    pub async fn create(
        &mut self,
        user: &str,
        password: &Password,
        authority: &Authority,
    ) -> Result<(), Error> {
        let change = self.change(user, password).await?;
        let path = ACCOUNTS_ROUTE.to_owned();
        self.send(Method::POST, &path, Some(&change), authority, user)
            .await
    }

    /// Sets the password of `user` to `new` (proved by the old password or the admin token).
    pub async fn change_password(
        &mut self,
        user: &str,
        new: &Password,
        authority: &Authority,
    ) -> Result<(), Error> {
        let change = self.change(user, new).await?;
        let path = format!("{ACCOUNTS_ROUTE}/{user}");
        self.send(Method::PUT, &path, Some(&change), authority, user)
            .await
    }

    /// Deletes the account `user` (proved by its password or the admin token).
    pub async fn delete(&mut self, user: &str, authority: &Authority) -> Result<(), Error> {
        let path = format!("{ACCOUNTS_ROUTE}/{user}");
        self.send(Method::DELETE, &path, None, authority, user)
            .await
    }

    async fn change(&self, user: &str, password: &Password) -> Result<AccountChange, Error> {
        let realm = self.info().await?.realm;
        Ok(AccountChange::new(user, &realm, password.expose()))
    }

    /// Sends the request, answering one digest challenge when the authority is a password.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        change: Option<&AccountChange>,
        authority: &Authority,
        user: &str,
    ) -> Result<(), Error> {
        let url = format!("{}{path}", self.base);
        let body = change.map(|change| {
            (
                "application/json",
                serde_json::to_vec(change).unwrap_or_default(),
            )
        });
        let response = match authority {
            Authority::Password(password) => {
                let signer = DigestSigner {
                    user,
                    password,
                    cnonce: self.ids.token(16),
                };
                signed_request(&self.http, method, &url, body, &signer).await?
            }
            Authority::AdminToken(_) | Authority::Anyone => {
                let mut request = self.http.request(method, &url);
                if let Authority::AdminToken(token) = authority {
                    request = request.header(AUTHORIZATION, format!("Bearer {token}"));
                }
                if let Some((content_type, body)) = body {
                    request = request.header(CONTENT_TYPE, content_type).body(body);
                }
                request.send().await.map_err(Error::HttpClient)?
            }
        };
        let status = response.status();
        let body = response.bytes().await.map_err(Error::HttpClient)?;
        if status.is_success() {
            Ok(())
        } else {
            Err(http_error(status, &body))
        }
    }
}

/// Who answers a digest challenge: the user, the password, the client nonce to use.
pub struct DigestSigner<'a> {
    /// The user name.
    pub user: &'a str,
    /// The user's password.
    pub password: &'a Password,
    /// A fresh client nonce.
    pub cnonce: String,
}

/// Sends `method url` with `body` (its content type and bytes); a `401` with digest challenges
/// (RFC 7616) is answered once with `signer`'s credentials for the strongest algorithm offered.
/// Returns the last response, whatever its status.
pub async fn signed_request(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<(&str, Vec<u8>)>,
    signer: &DigestSigner<'_>,
) -> Result<reqwest::Response, Error> {
    let request = |authorization: Option<String>| {
        let mut request = http.request(method.clone(), url);
        if let Some((content_type, body)) = &body {
            request = request
                .header(CONTENT_TYPE, *content_type)
                .body(body.clone());
        }
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        request
    };
    let response = request(None).send().await.map_err(Error::HttpClient)?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    let Some(challenge) = strongest_challenge(&response) else {
        return Ok(response);
    };
    let credentials = signer.answer(&challenge, &method, url, &signer.cnonce)?;
    request(Some(credentials))
        .send()
        .await
        .map_err(Error::HttpClient)
}

/// The strongest digest challenge (RFC 7616) of a `401`, if it has one this client answers.
pub(crate) fn strongest_challenge(response: &reqwest::Response) -> Option<Challenge> {
    let offered = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| Challenge::parse(value).ok())
        .collect::<Vec<_>>();
    Challenge::strongest(offered)
}

impl DigestSigner<'_> {
    /// The `Authorization` value answering `challenge` for `method url`, with client nonce
    /// `cnonce`: the digest `uri` is the URL's path and query, as sent.
    pub(crate) fn answer(
        &self,
        challenge: &Challenge,
        method: &Method,
        url: &str,
        cnonce: &str,
    ) -> Result<String, Error> {
        let target = reqwest::Url::parse(url).map_err(|error| Error::BadServer {
            url: format!("{url}: {error}"),
        })?;
        let uri = match target.query() {
            Some(query) => format!("{}?{query}", target.path()),
            None => target.path().to_owned(),
        };
        let credentials = challenge.answer(
            self.user,
            self.password.expose(),
            method.as_str(),
            &uri,
            cnonce,
            1,
        );
        Ok(credentials.to_string())
    }
}

fn http_error(status: StatusCode, body: &[u8]) -> Error {
    Error::Http {
        status: status.as_u16(),
        body: String::from_utf8_lossy(body).trim().to_owned(),
    }
}
