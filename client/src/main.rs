//! `rcs`: send and receive files and chats through the edge from the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::io::IsTerminal;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rcs_client::{Accounts, Authority, Client, Options, download};
use rcs_core::client::Password;
use rcs_core::service::Delivery;

/// The environment variable a password may come from instead of `--password`.
const PASSWORD_VARIABLE: &str = "RCS_PASSWORD";

/// The environment variable the new password of `rcs account passwd` may come from.
const NEW_PASSWORD_VARIABLE: &str = "RCS_NEW_PASSWORD";

/// The environment variable the admin token may come from instead of `--admin-token`.
const ADMIN_TOKEN_VARIABLE: &str = "RCS_ADMIN_TOKEN";

/// RCS file transfer client: SIP and MSRP over WebSockets to the edge.
#[derive(Debug, Parser)]
#[command(name = "rcs", version)]
struct Cli {
    /// The edge's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    server: String,
    /// The user name (the user part of sip:<user>@<domain>).
    #[arg(long)]
    user: Option<String>,
    /// The account's password; otherwise RCS_PASSWORD, otherwise it is asked for on the terminal.
    /// It answers the servers' digest challenges and is never sent.
    #[arg(long)]
    password: Option<String>,
    /// The SIP domain.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Seconds to wait with nothing arriving before giving up.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Bytes per MSRP chunk sent.
    #[arg(long, default_value_t = 64 * 1024)]
    chunk_size: u64,
    /// MSRP chunks in flight.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register this device and report the lifetime granted (and the user's other devices).
    Register {
        /// Ask for pull delivery (default: push).
        #[arg(long)]
        pull: bool,
    },
    /// Send a file (Ctrl-C stops it: the server discards what it stored and tells the receiver).
    Send {
        /// The recipient: bob, bob@domain or sip:bob@domain.
        to: String,
        /// The file.
        file: PathBuf,
    },
    /// Receive files.
    Receive {
        /// Ask for pull delivery: the file is requested when it is offered.
        #[arg(long)]
        pull: bool,
        /// Where to save files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// How many files to receive.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Send a chat message.
    Chat {
        /// The recipient.
        to: String,
        /// The text.
        text: String,
    },
    /// Print chat messages as they arrive (until interrupted).
    Listen,
    /// Create an account, change its password, or delete it.
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Download a file over HTTP, resuming a partial one.
    Download {
        /// The signed URL.
        url: String,
        /// Where to save it (default: the last path segment).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AccountAction {
    /// Create the account of --user with the password (sign-up, where the deployment allows it;
    /// with --admin-token or RCS_ADMIN_TOKEN, as its administrator).
    Create {
        /// The deployment's admin token.
        #[arg(long)]
        admin_token: Option<String>,
    },
    /// Change the password of --user: the old one is --password (or RCS_PASSWORD, or asked for),
    /// the new one --new-password (or RCS_NEW_PASSWORD, or asked for).
    Passwd {
        /// The new password.
        #[arg(long)]
        new_password: Option<String>,
        /// Change it as the administrator instead of with the old password.
        #[arg(long)]
        admin_token: Option<String>,
    },
    /// Delete the account of --user (proved by its password, or --admin-token).
    Delete {
        /// The deployment's admin token.
        #[arg(long)]
        admin_token: Option<String>,
    },
}

/// A secret from its flag, else its environment variable, else the terminal (asked with `prompt`,
/// not echoed). Without a terminal the error says where it can come from.
fn secret(flag: Option<&str>, variable: &str, prompt: &str) -> anyhow::Result<String> {
    if let Some(value) = flag {
        return Ok(value.to_owned());
    }
    if let Ok(value) = std::env::var(variable) {
        return Ok(value);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{prompt} is needed: pass it as a flag or set {variable}");
    }
    rpassword::prompt_password(format!("{prompt}: ")).context("reading from the terminal")
}

/// The admin token from its flag or `RCS_ADMIN_TOKEN`, if either is given.
fn admin_token(flag: Option<&String>) -> Option<String> {
    flag.cloned()
        .or_else(|| std::env::var(ADMIN_TOKEN_VARIABLE).ok())
}

impl Cli {
    /// The options of a command that connects: the flags, and the password.
    fn options(&self) -> anyhow::Result<Options> {
        let password = secret(
            self.password.as_deref(),
            PASSWORD_VARIABLE,
            &format!("Password of {}", self.user.as_deref().unwrap_or("the user")),
        )?;
        Ok(Options {
            password: Some(Password::new(password)),
            ..self.flag_options()
        })
    }

    fn flag_options(&self) -> Options {
        Options {
            domain: self.domain.clone(),
            chunk_size: self.chunk_size,
            window: self.window,
            timeout: Duration::from_secs(self.timeout),
            progress: !self.quiet,
            ..Options::default()
        }
    }

    fn password(&self, prompt: &str) -> anyhow::Result<Password> {
        secret(self.password.as_deref(), PASSWORD_VARIABLE, prompt).map(Password::new)
    }

    async fn account(&self, action: &AccountAction) -> anyhow::Result<()> {
        let user = self.user()?;
        let mut accounts = Accounts::new(&self.server, Duration::from_secs(self.timeout))?;
        match action {
            AccountAction::Create { admin_token: flag } => {
                let password = self.password(&format!("New password of {user}"))?;
                let authority =
                    admin_token(flag.as_ref()).map_or(Authority::Anyone, Authority::AdminToken);
                accounts.create(user, &password, &authority).await?;
                println!("created the account {user}");
            }
            AccountAction::Passwd {
                new_password,
                admin_token: flag,
            } => {
                let authority = match admin_token(flag.as_ref()) {
                    Some(token) => Authority::AdminToken(token),
                    None => Authority::Password(self.password(&format!("Password of {user}"))?),
                };
                let new = secret(
                    new_password.as_deref(),
                    NEW_PASSWORD_VARIABLE,
                    &format!("New password of {user}"),
                )
                .map(Password::new)?;
                accounts.change_password(user, &new, &authority).await?;
                println!("changed the password of {user}");
            }
            AccountAction::Delete { admin_token: flag } => {
                let authority = match admin_token(flag.as_ref()) {
                    Some(token) => Authority::AdminToken(token),
                    None => Authority::Password(self.password(&format!("Password of {user}"))?),
                };
                accounts.delete(user, &authority).await?;
                println!("deleted the account {user}");
            }
        }
        Ok(())
    }

    fn user(&self) -> anyhow::Result<&str> {
        self.user
            .as_deref()
            .context("--user is needed for this command")
    }

    async fn connect(&self, delivery: Option<Delivery>) -> anyhow::Result<Client> {
        let user = self.user()?;
        let mut client = Client::connect(&self.server, user, self.options()?)
            .await
            .with_context(|| format!("connecting to {}", self.server))?;
        client.register(delivery).await?;
        Ok(client)
    }
}

fn delivery(pull: bool) -> Delivery {
    if pull { Delivery::Pull } else { Delivery::Push }
}

/// The file name a download URL names, without its query.
fn download_name(url: &str) -> PathBuf {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    PathBuf::from(rcs_client::safe_name(Some(last), "download"))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Register { pull } => {
            let user = cli.user()?;
            let mut client = Client::connect(&cli.server, user, cli.options()?).await?;
            let expires = client.register(Some(delivery(*pull))).await?;
            println!("registered {} for {expires} s", client.aor());
            client.close().await?;
        }
        Command::Send { to, file } => {
            let mut client = cli.connect(None).await?;
            // Ctrl-C stops the upload cleanly: the server discards it and tells the receiver.
            let interrupted = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let outcome = client.send_file_until(to, file, interrupted).await?;
            let reason = outcome.bye_reason.as_ref();
            if outcome.resumed_from > 0 {
                println!("resumed at byte {}", outcome.resumed_from);
            }
            println!(
                "sent {} ({} bytes): report {}, {}",
                file.display(),
                outcome.bytes,
                outcome
                    .report
                    .map_or_else(|| "none".into(), |s| s.to_string()),
                reason.map_or("no reason given".to_owned(), ToString::to_string),
            );
            client.close().await?;
            if !outcome.delivered() {
                bail!(
                    "the file was not delivered: {}",
                    reason.map_or(
                        "no answer from the receiver AS".to_owned(),
                        ToString::to_string
                    )
                );
            }
        }
        Command::Receive { pull, out, count } => {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let mut client = cli.connect(Some(delivery(*pull))).await?;
            eprintln!("waiting for files as {}", client.aor());
            for _ in 0..*count {
                let file = match client.receive_next(out).await {
                    Err(rcs_client::Error::AnsweredElsewhere { name }) => {
                        println!("{name} was received on another device");
                        continue;
                    }
                    received => received?,
                };
                println!(
                    "received {} ({} bytes, sha-256 {}) from {}",
                    file.path.display(),
                    file.size,
                    hex::encode(file.sha256),
                    file.from
                );
            }
            client.close().await?;
        }
        Command::Chat { to, text } => {
            let mut client = cli.connect(None).await?;
            let status = client.chat(to, text).await?;
            println!("sent ({status})");
            client.close().await?;
        }
        Command::Listen => {
            let mut client = cli.connect(None).await?;
            eprintln!("listening as {}", client.aor());
            loop {
                match client.next_chat().await {
                    Ok(chat) => {
                        println!("{}: {}", chat.from, String::from_utf8_lossy(&chat.body));
                    }
                    Err(rcs_client::Error::Timeout { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Command::Account { action } => cli.account(action).await?,
        Command::Download { url, out } => {
            let path = out.clone().unwrap_or_else(|| download_name(url));
            let done = download(url, &path, Duration::from_secs(cli.timeout), !cli.quiet).await?;
            if done.resumed_from > 0 {
                println!("resumed at byte {}", done.resumed_from);
            }
            println!(
                "downloaded {} ({} bytes, sha-256 {})",
                done.path.display(),
                done.size,
                hex::encode(done.sha256)
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rcs: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_parse_as_documented() {
        let cli = Cli::try_parse_from([
            "rcs",
            "--server",
            "http://127.0.0.1:3000",
            "--user",
            "alice",
            "send",
            "bob",
            "a.jpg",
        ])
        .unwrap();
        assert_eq!(cli.user.as_deref(), Some("alice"));
        assert!(matches!(cli.command, Command::Send { ref to, ref file }
            if to == "bob" && file == &PathBuf::from("a.jpg")));
        let cli = Cli::try_parse_from([
            "rcs",
            "--user",
            "bob",
            "--domain",
            "example.com",
            "receive",
            "--pull",
            "--out",
            "d",
            "--count",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.domain, "example.com");
        assert_eq!(cli.server, "http://127.0.0.1:3000");
        assert!(
            matches!(cli.command, Command::Receive { pull: true, ref out, count: 3 }
            if out == &PathBuf::from("d"))
        );
        let cli =
            Cli::try_parse_from(["rcs", "--quiet", "download", "http://h/files/ab?exp=1"]).unwrap();
        assert!(cli.quiet && cli.user.is_none());
        assert!(Cli::try_parse_from(["rcs", "--user", "a", "send", "bob"]).is_err());
        assert!(Cli::try_parse_from(["rcs", "--user", "a", "fly"]).is_err());
        assert!(Cli::try_parse_from(["rcs", "--user", "a", "--window", "x", "listen"]).is_err());
    }

    #[test]
    fn options_follow_the_flags() {
        let cli = Cli::try_parse_from([
            "rcs",
            "--user",
            "a",
            "--timeout",
            "5",
            "--chunk-size",
            "1000",
            "--window",
            "2",
            "-q",
            "listen",
        ])
        .unwrap();
        let options = cli.flag_options();
        assert_eq!(options.timeout, Duration::from_secs(5));
        assert_eq!((options.chunk_size, options.window), (1000, 2));
        assert!(!options.progress);
    }

    #[test]
    fn download_names_come_from_the_url_path() {
        assert_eq!(
            download_name("http://127.0.0.1:3000/files/abc123?exp=1&sig=ff"),
            PathBuf::from("abc123")
        );
        assert_eq!(download_name("http://h/"), PathBuf::from("download"));
        assert_eq!(download_name("http://h/files/..%2F"), PathBuf::from("%2F"));
    }
}
