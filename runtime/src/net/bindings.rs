//! Host bindings of `wasi:sockets/tcp`, `tcp-create-socket` and `ip-name-lookup`, generated
//! from the WIT wasmtime-wasi 48 ships (copied into `wit/deps`).
//!
//! Every type the interfaces share with the rest of WASI (network, error codes, addresses,
//! pollables, streams) is mapped to wasmtime-wasi's own, so the resources this module returns
//! are the ones wasmtime-wasi's `wasi:io` and `wasi:sockets/network` accept. Only the
//! `tcp-socket` and `resolve-address-stream` resources are ours.

wasmtime::component::bindgen!({
    path: "src/net/wit",
    world: "wasmpod:net/virtual-tcp",
    imports: {
        "wasi:sockets/tcp.[method]tcp-socket.start-bind": async | trappable,
        "wasi:sockets/tcp.[method]tcp-socket.start-listen": async | trappable,
        default: trappable,
    },
    trappable_error_type: {
        "wasi:sockets/network.error-code" => wasmtime_wasi::p2::SocketError,
    },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:sockets/network": wasmtime_wasi::p2::bindings::sockets::network,
        "wasi:sockets/tcp.tcp-socket": super::socket::TcpSocket,
        "wasi:sockets/ip-name-lookup.resolve-address-stream": super::lookup::ResolveAddressStream,
    },
    require_store_data_send: true,
});

pub(crate) use wasi::sockets::{ip_name_lookup, tcp, tcp_create_socket};
