//! Throwaway certificates for mutual TLS tests, made with `rcgen` when a
//! test starts: a CA, a server certificate for `localhost` / 127.0.0.1 and
//! a client certificate, all signed by the CA; plus [`TestPki::foreign`]
//! for a client the server must refuse.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM texts of a small PKI.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// Where [`TestPki::write`] put the files.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn leaf(
    cn: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String)> {
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl TestPki {
    /// A fresh CA with a server certificate (`localhost`, `127.0.0.1`) and a
    /// client certificate named `client_cn`.
    pub fn generate(client_cn: &str) -> Result<TestPki> {
        let ca_key = KeyPair::generate().context("CA key")?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "metal-switchd lab CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).context("CA certificate")?;
        let issuer = Issuer::new(ca, ca_key);
        let (server_cert_pem, server_key_pem) = leaf(
            "localhost",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        )?;
        let (client_cert_pem, client_key_pem) = leaf(
            client_cn,
            vec![client_cn.into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            &issuer,
        )?;
        Ok(TestPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        })
    }

    /// This PKI's CA and server, with a client certificate from another CA.
    pub fn foreign(&self) -> Result<TestPki> {
        let other = TestPki::generate("intruder")?;
        Ok(TestPki {
            client_cert_pem: other.client_cert_pem,
            client_key_pem: other.client_key_pem,
            ..self.clone()
        })
    }

    /// The server side for [`super::api_server::ApiServerOptions::grpc`].
    pub fn server_tls(&self) -> crate::api_server::GrpcTls {
        crate::api_server::GrpcTls {
            cert_pem: self.server_cert_pem.clone(),
            key_pem: self.server_key_pem.clone(),
            client_ca_pem: self.ca_pem.clone(),
        }
    }

    /// Write the client side (CA, client certificate and key) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<PkiFiles> {
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        for (path, text) in [
            (&files.ca, &self.ca_pem),
            (&files.client_cert, &self.client_cert_pem),
            (&files.client_key, &self.client_key_pem),
        ] {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        // The agent refuses a private key others could read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&files.client_key, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 600 {}", files.client_key.display()))?;
        Ok(files)
    }
}
