//! metal-api v1's gRPC event service as the lab serves it:
//! `api.v1.EventService/Send` over HTTP/2 with mutual TLS (metal-api
//! reference §4.1), on a port of its own.
//!
//! - TLS: the server's certificate and key, and the CA whose client
//!   certificates it requires (`tls.RequireAndVerifyClientCert`); no token,
//!   no HMAC.
//! - Messages written from the proto's field numbers with `prost`
//!   derives, independently of the agent's.
//! - Semantics of metal-api's handler: unknown machine ids are fine (the
//!   server creates them), the event time is ignored, an unknown event
//!   string puts the machine id into `failed`; the answer is `{events: <ok
//!   count>, failed}`.
//! - Every call is recorded as [`Call::V1EventSend`], the request in its
//!   proto3 JSON form; status faults map to gRPC codes (503 →
//!   `UNAVAILABLE`, 400 → `INVALID_ARGUMENT`, 500 → `INTERNAL`).
//!
//! Not modelled: metal-api's keepalive enforcement (closing connections
//! that ping more often than every 5 s); tonic's server has no such policy.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::{Value, json};
use tonic::codegen::http;

use super::wire::{self, Instant};
use super::{Call, FaultKind, Record, Shared};

/// The method path.
pub const SEND_PATH: &str = "/api.v1.EventService/Send";

/// metal-api's provisioning event strings (`metal.ProvisioningEventType`).
pub const V1_EVENT_TYPES: [&str; 11] = [
    "Alive",
    "Crashed",
    "PXE Booting",
    "Planned Reboot",
    "Preparing",
    "Registering",
    "Waiting",
    "Installing",
    "Booting New Kernel",
    "Phoned Home",
    "Machine Reclaim",
];

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `api.v1.MachineProvisioningEvent`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MachineProvisioningEvent {
    #[prost(message, optional, tag = "1")]
    pub time: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub event: String,
    #[prost(string, tag = "3")]
    pub message: String,
}

/// `api.v1.EventServiceSendRequest`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EventServiceSendRequest {
    #[prost(btree_map = "string, message", tag = "1")]
    pub events: BTreeMap<String, MachineProvisioningEvent>,
}

/// `api.v1.EventServiceSendResponse`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EventServiceSendResponse {
    #[prost(uint64, tag = "1")]
    pub events: u64,
    #[prost(string, repeated, tag = "2")]
    pub failed: Vec<String>,
}

/// The certificates of the gRPC port (PEM).
#[derive(Debug, Clone)]
pub struct GrpcTls {
    pub cert_pem: String,
    pub key_pem: String,
    /// Client certificates must be signed by this CA.
    pub client_ca_pem: String,
}

/// The request in proto3 JSON (what `grpcurl` would show).
pub fn request_json(r: &EventServiceSendRequest) -> Value {
    let events: serde_json::Map<String, Value> = r
        .events
        .iter()
        .map(|(id, e)| {
            let mut o = serde_json::Map::new();
            if let Some(t) = e.time {
                o.insert(
                    "time".into(),
                    Value::String(wire::proto_timestamp(Instant {
                        secs: t.seconds,
                        nanos: u32::try_from(t.nanos).unwrap_or(0),
                    })),
                );
            }
            if !e.event.is_empty() {
                o.insert("event".into(), Value::String(e.event.clone()));
            }
            if !e.message.is_empty() {
                o.insert("message".into(), Value::String(e.message.clone()));
            }
            (id.clone(), Value::Object(o))
        })
        .collect();
    json!({ "events": events })
}

/// metal-api's handler.
fn answer(r: &EventServiceSendRequest) -> EventServiceSendResponse {
    let mut resp = EventServiceSendResponse::default();
    for (id, e) in &r.events {
        if V1_EVENT_TYPES.contains(&e.event.as_str()) {
            resp.events += 1;
        } else {
            resp.failed.push(id.clone());
        }
    }
    resp
}

fn status_for(http: u16, message: String) -> tonic::Status {
    let code = match http {
        400 => tonic::Code::InvalidArgument,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::NotFound,
        429 => tonic::Code::ResourceExhausted,
        500 => tonic::Code::Internal,
        501 => tonic::Code::Unimplemented,
        502..=503 => tonic::Code::Unavailable,
        504 => tonic::Code::DeadlineExceeded,
        _ => tonic::Code::Unknown,
    };
    tonic::Status::new(code, message)
}

fn record(shared: &Shared, request: Value, response: Value, fault: Option<String>) {
    let rec = {
        let mut st = shared.lock();
        let seq = st.next_seq();
        let r = Record {
            seq,
            call: Call::V1EventSend,
            method: "POST".into(),
            path: SEND_PATH.into(),
            status: 200,
            request,
            response,
            fault,
        };
        st.records.push(r.clone());
        r
    };
    let file = shared
        .record_dir
        .join(format!("{:04}-{}.json", rec.seq, rec.call.name()));
    if let Ok(text) = serde_json::to_string_pretty(&rec.to_json()) {
        let _ = std::fs::write(file, text);
    }
}

async fn send(
    shared: Arc<Shared>,
    req: EventServiceSendRequest,
) -> Result<tonic::Response<EventServiceSendResponse>, tonic::Status> {
    let request = request_json(&req);
    let fault = {
        let mut st = shared.lock();
        let idx = st
            .faults
            .iter()
            .position(|f| f.times > 0 && f.call.is_none_or(|c| c == Call::V1EventSend));
        idx.and_then(|i| {
            let f = st.faults.get_mut(i)?;
            f.times -= 1;
            let f = f.clone();
            if f.times == 0 {
                st.faults.remove(i);
            }
            Some(f)
        })
    };
    if let Some(f) = &fault {
        let status = match &f.kind {
            FaultKind::Delay(d) => {
                tokio::time::sleep(*d).await;
                None
            }
            FaultKind::Status { status, .. } => {
                Some(status_for(*status, format!("lab fault: HTTP {status}")))
            }
            _ => Some(tonic::Status::unavailable("lab fault: connection dropped")),
        };
        if let Some(s) = status {
            record(
                &shared,
                request,
                json!({"grpc-status": format!("{:?}", s.code()), "message": s.message()}),
                Some(f.name()),
            );
            return Err(s);
        }
    }
    let resp = answer(&req);
    record(
        &shared,
        request,
        json!({"events": resp.events.to_string(), "failed": resp.failed}),
        fault.map(|f| f.name()),
    );
    Ok(tonic::Response::new(resp))
}

/// `api.v1.EventService` for tonic's router.
#[derive(Clone)]
pub(crate) struct EventService {
    pub shared: Arc<Shared>,
}

impl tonic::server::NamedService for EventService {
    const NAME: &'static str = "api.v1.EventService";
}

struct SendMethod(Arc<Shared>);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tonic::server::UnaryService<EventServiceSendRequest> for SendMethod {
    type Response = EventServiceSendResponse;
    type Future = BoxFuture<Result<tonic::Response<EventServiceSendResponse>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<EventServiceSendRequest>) -> Self::Future {
        Box::pin(send(self.0.clone(), request.into_inner()))
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for EventService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let shared = self.shared.clone();
        if req.uri().path() == SEND_PATH {
            Box::pin(async move {
                let codec = tonic_prost::ProstCodec::<
                    EventServiceSendResponse,
                    EventServiceSendRequest,
                >::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(SendMethod(shared), req).await)
            })
        } else {
            Box::pin(async { Ok(tonic::Status::unimplemented("unknown method").into_http()) })
        }
    }
}

/// Serve the event service with mutual TLS on `listener` until the runtime
/// stops.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tls: GrpcTls,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
    let cfg = ServerTlsConfig::new()
        .identity(Identity::from_pem(tls.cert_pem, tls.key_pem))
        .client_ca_root(Certificate::from_pem(tls.client_ca_pem));
    Server::builder()
        .tls_config(cfg)?
        .add_service(EventService { shared })
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
        .await?;
    Ok(())
}
