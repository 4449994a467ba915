//! The receiver AS as a Spin component (`/receiver/...`, `/files/...`): takes first values from the
//! sender AS, delivers files to its users over SIP and MSRP WebSockets through the GRIP gateway, and
//! serves the signed download URLs. All logic is in `rcs-edge`.

/// Routes a request to its handler; anything else gets 404 or 405 with a reason.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_service]
async fn handle(request: spin_sdk::http::Request) -> rcs_edge::spin::Answer {
    use rcs_edge::{Route, Side, route, spin};
    const SIDE: Side = Side::Receiver;
    match route(SIDE, request.method(), request.uri().path()) {
        Ok(Route::Grip(protocol)) => spin::grip(SIDE, protocol, request).await,
        Ok(Route::Peer) => spin::peer(SIDE, request).await,
        Ok(Route::Accounts) => spin::accounts(request).await,
        Ok(Route::Tick) => spin::tick(SIDE, request).await,
        Ok(route @ (Route::Files | Route::Upload)) => spin::http_files(route, request).await,
        Err(refusal) => spin::refused(refusal),
    }
}
