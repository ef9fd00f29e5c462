//! metal-api v1's gRPC event service (feature `agent`):
//! `api.v1.EventService/Send` over HTTP/2 with mutual TLS, as metal-core
//! reaches it (metal-api reference §4.1).
//!
//! - Messages: `api.v1.EventServiceSendRequest { map<string,
//!   MachineProvisioningEvent> events = 1 }`, `MachineProvisioningEvent {
//!   google.protobuf.Timestamp time = 1; string event = 2; string message =
//!   3 }`, `EventServiceSendResponse { uint64 events = 1; repeated string
//!   failed = 2 }` — written with `prost` derives from the proto's field
//!   numbers, so the build needs no `protoc`.
//! - Transport: `https://<grpc_address>`, the server's certificate checked
//!   against `grpc_ca_cert_file` and the host of `grpc_address`; the client
//!   presents `grpc_client_cert_file` / `grpc_client_key_file`; HTTP/2
//!   keepalive pings every 10 s with a 1 s ack timeout, also while idle
//!   (metal-core's settings; metal-api closes connections that ping more
//!   often than every 5 s); each call limited by `timeout`.
//! - The channel connects lazily and reconnects by itself; the certificate
//!   files are read when the client is built.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::error::ApiError;
use super::{EventOutcome, PhoneHomeEvent};

/// The v1 event string of a phone-home (metal-api's `ProvisioningEventPhonedHome`).
pub const PHONED_HOME: &str = "Phoned Home";
/// The gRPC method path.
pub const SEND_PATH: &str = "/api.v1.EventService/Send";
/// metal-core's keepalive: a ping every 10 s, 1 s to answer.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

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

/// `api.v1.EventServiceSendRequest` (key: machine id).
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

/// The phone-home batch as metal-core sends it: one `Phoned Home` event per
/// machine, `message` = the LLDP system description, `time` = when seen.
pub fn send_request(events: &[PhoneHomeEvent]) -> EventServiceSendRequest {
    EventServiceSendRequest {
        events: events
            .iter()
            .map(|e| {
                (
                    e.machine_id.clone(),
                    MachineProvisioningEvent {
                        time: Some(Timestamp {
                            seconds: i64::try_from(e.time.as_secs()).unwrap_or(i64::MAX),
                            nanos: i32::try_from(e.time.subsec_nanos()).unwrap_or(0),
                        }),
                        event: PHONED_HOME.to_owned(),
                        message: e.message.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// Where and how to reach the event service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcSettings {
    /// `host:port`.
    pub address: String,
    pub ca_cert_file: std::path::PathBuf,
    pub client_cert_file: std::path::PathBuf,
    pub client_key_file: std::path::PathBuf,
    /// Limit of one call (and of connecting).
    pub timeout: Duration,
}

/// The host part of `host:port` (`[v6]:port` too).
fn host_of(address: &str) -> Option<&str> {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split_once(']').map(|(h, _)| h);
    }
    let (host, port) = address.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then_some(host)
}

/// A PEM file of the mutual TLS: bounded, a regular file, and for the
/// private key a file only its owner (root or the agent's user) can use.
pub(crate) fn read_pem(key: &str, path: &Path) -> Result<Vec<u8>, ApiError> {
    use crate::files::{FileKind, GRPC_PEM_MAX_BYTES, read_bytes};
    let kind = if key == "grpc_client_key_file" {
        FileKind::GrpcClientKey
    } else {
        FileKind::GrpcCertificate
    };
    read_bytes(kind, path, GRPC_PEM_MAX_BYTES)
        .map_err(|e| ApiError::Config(format!("{key}: {e} (the v1 gRPC event service needs it)")))
}

/// A client of `api.v1.EventService`.
#[derive(Debug, Clone)]
pub struct GrpcEvents {
    address: String,
    timeout: Duration,
    channel: Channel,
}

impl GrpcEvents {
    /// Read the certificates and prepare the (lazily connecting) channel.
    pub fn new(s: &GrpcSettings) -> Result<GrpcEvents, ApiError> {
        let host = host_of(&s.address).ok_or_else(|| {
            ApiError::Config(format!(
                "grpc_address {:?} is not host:port (e.g. metal-api.example.com:50051)",
                s.address
            ))
        })?;
        let ca = read_pem("grpc_ca_cert_file", &s.ca_cert_file)?;
        let cert = read_pem("grpc_client_cert_file", &s.client_cert_file)?;
        let key = read_pem("grpc_client_key_file", &s.client_key_file)?;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key))
            .domain_name(host);
        let endpoint = Endpoint::from_shared(format!("https://{}", s.address))
            .map_err(|e| ApiError::Config(format!("grpc_address {:?}: {e}", s.address)))?
            .tls_config(tls)
            .map_err(|e| ApiError::Tls(format!("gRPC client certificate or CA: {e}")))?
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect_timeout(s.timeout)
            .timeout(s.timeout);
        Ok(GrpcEvents {
            address: s.address.clone(),
            timeout: s.timeout,
            channel: endpoint.connect_lazy(),
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// One `Send` call.
    pub async fn send(
        &self,
        call: &'static str,
        events: &[PhoneHomeEvent],
    ) -> Result<EventOutcome, ApiError> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let status = |s: tonic::Status| ApiError::Grpc {
            call,
            address: self.address.clone(),
            code: s.code(),
            message: crate::names::escaped(s.message(), crate::names::MESSAGE_CHARS),
        };
        grpc.ready().await.map_err(|e| ApiError::Grpc {
            call,
            address: self.address.clone(),
            code: tonic::Code::Unavailable,
            message: e.to_string(),
        })?;
        let mut req = tonic::Request::new(send_request(events));
        req.set_timeout(self.timeout);
        let codec =
            tonic_prost::ProstCodec::<EventServiceSendRequest, EventServiceSendResponse>::default();
        let path = http::uri::PathAndQuery::from_static(SEND_PATH);
        let resp = grpc.unary(req, path, codec).await.map_err(status)?;
        let r = resp.into_inner();
        Ok(EventOutcome {
            sent: r.events,
            failed: r.failed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn hosts() {
        assert_eq!(host_of("metal-api:50051"), Some("metal-api"));
        assert_eq!(host_of("10.0.0.1:50051"), Some("10.0.0.1"));
        assert_eq!(host_of("[fd00::1]:50051"), Some("fd00::1"));
        assert_eq!(host_of("metal-api"), None);
        assert_eq!(host_of(":50051"), None);
    }

    /// The request's wire bytes, written by hand from the proto's field
    /// numbers and protobuf's encoding (tag = field << 3 | wire type).
    #[test]
    fn request_encoding_follows_the_proto() {
        let req = send_request(&[PhoneHomeEvent {
            machine_id: "m1".into(),
            time: Duration::new(1_775_000_000, 5),
            message: "provisioned".into(),
        }]);
        let bytes = req.encode_to_vec();
        // MachineProvisioningEvent: time {seconds (1, varint), nanos (2, varint)},
        // event (2, bytes), message (3, bytes).
        let mut ts = vec![0x08];
        let mut v = 1_775_000_000u64;
        while v >= 0x80 {
            ts.push((v as u8) | 0x80);
            v >>= 7;
        }
        ts.push(v as u8);
        ts.extend([0x10, 5]);
        let mut ev = vec![0x0a, ts.len() as u8];
        ev.extend(&ts);
        ev.extend([0x12, 11]);
        ev.extend(b"Phoned Home");
        ev.extend([0x1a, 11]);
        ev.extend(b"provisioned");
        // Map entry: key (1, bytes), value (2, message); field 1 of the request.
        let mut entry = vec![0x0a, 2, b'm', b'1', 0x12, ev.len() as u8];
        entry.extend(&ev);
        let mut expected = vec![0x0a, entry.len() as u8];
        expected.extend(&entry);
        assert_eq!(bytes, expected);
        assert_eq!(EventServiceSendRequest::decode(&*bytes).unwrap(), req);
        let resp = EventServiceSendResponse::decode(&[0x08, 3, 0x12, 1, b'x'][..]).unwrap();
        assert_eq!(resp.events, 3);
        assert_eq!(resp.failed, vec!["x".to_owned()]);
    }
}
