//! The sender AS as a Spin component (`/sender/...`): takes files from its users over SIP and MSRP
//! WebSockets through the GRIP gateway, or over FT-HTTP uploads. All logic is in `rcs-edge`.

/// Routes a request to its handler; anything else gets 404 or 405 with a reason.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_service]
async fn handle(request: spin_sdk::http::Request) -> rcs_edge::spin::Answer {
    use rcs_edge::{Route, Side, route, spin};
    const SIDE: Side = Side::Sender;
    match route(SIDE, request.method(), request.uri().path()) {
        Ok(Route::Grip(protocol)) => spin::grip(SIDE, protocol, request).await,
        Ok(Route::Tick) => spin::tick(SIDE, request).await,
        Ok(route @ (Route::Upload | Route::Files)) => spin::http_files(route, request).await,
        Ok(Route::Peer) => spin::peer(SIDE, request).await,
        Ok(Route::Accounts) => spin::accounts(request).await,
        Err(refusal) => spin::refused(refusal),
    }
}
