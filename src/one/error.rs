//! Errors of the one module: the OpenNebula error codes a call can fail with (API-DOC §5.1,
//! plus OCA's transport failures), each naming the call and the object, and the refusals of
//! the lifecycle operations themselves (unmanaged children, bad selections, a failed
//! checkpoint).

use super::Kind;
use super::children::Unmanaged;

/// What failed. The first ten variants are OpenNebula calls, by the error code oned answered
/// (or the transport failure); each names the call (`one.vn.allocate`) and the object. The
/// rest are refusals of the lifecycle operations themselves.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{call} on {object} failed: OpenNebula rejected the credentials ({message}); check the OpenNebula user and password in the settings"
    )]
    Authentication { call: &'static str, object: String, message: String },
    #[error("{call} on {object} failed: not authorized ({message}); use an OpenNebula user of the oneadmin group")]
    Authorization { call: &'static str, object: String, message: String },
    #[error("{call} on {object} failed: it does not exist ({message})")]
    NoExists { call: &'static str, object: String, message: String },
    #[error("{call} on {object} failed: OpenNebula refused the action ({message})")]
    Action { call: &'static str, object: String, message: String },
    #[error(
        "{call} on {object} failed: OpenNebula rejected the call's parameters ({message}); this is a formwork bug, please report it"
    )]
    XmlRpcApi { call: &'static str, object: String, message: String },
    #[error("{call} on {object} failed: OpenNebula internal error ({message}); see oned.log on the front-end")]
    Internal { call: &'static str, object: String, message: String },
    #[error("{call} for {object} failed: OpenNebula could not allocate it ({message})")]
    Allocate { call: &'static str, object: String, message: String },
    #[error("{call} on {object} failed: the object is locked ({message}); unlock it in OpenNebula, then retry")]
    Locked { call: &'static str, object: String, message: String },
    #[error(
        "{call} on {object} failed: cannot talk to OpenNebula ({message}); check the endpoint in the settings and that oned is running"
    )]
    Transport { call: &'static str, object: String, message: String },
    #[error("{call} on {object} timed out: {message}; check that oned is healthy, then retry")]
    Timeout { call: &'static str, object: String, message: String },
    #[error(
        "unmanaged resources found: {unmanaged}; delete them, or use the `force` option to delete them with the provision"
    )]
    Unmanaged { unmanaged: Unmanaged },
    #[error(
        "invalid resources types found: {}; only hosts, networks and datastores can be selected",
        types.join(", ")
    )]
    InvalidResourceTypes { types: Vec<String> },
    #[error("invalid selection of {kind}: {reason}")]
    InvalidSelection { kind: String, reason: String },
    #[error("{kind} {id} is not part of this provision; its {kind}s are: {known}")]
    NotInProvision { kind: Kind, id: i64, known: String },
    #[error(
        "several networks have vn_mad = elastic ({}); a deployment may declare one elastic network",
        names.join(", ")
    )]
    MultipleElastic { names: Vec<String> },
    #[error("the provision has no elastic network (vn_mad = elastic), so it cannot hold public IPs")]
    NoElasticNetwork,
    #[error("{kind} '{name}' has no OpenNebula id yet; retry the provision so CONFIGURING_ONE registers it")]
    MissingId { kind: Kind, name: String },
    #[error("address range {ar_id} is not on network {network}; the provision's `one_objects` lists its public IPs")]
    UnknownAr { network: i64, ar_id: i64 },
    #[error(
        "could not record progress after \"{event}\": {source}; nothing more was done, retry once the store is writable"
    )]
    Checkpoint { event: String, source: Box<dyn std::error::Error + Send + Sync> },
}

/// OpenNebula's error codes (API-DOC), plus the two transport failures OCA adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Authentication,
    Authorization,
    NoExists,
    Action,
    XmlRpcApi,
    Internal,
    Allocate,
    Locked,
    Transport,
    Timeout,
}

impl Code {
    /// The code oned (or OCA) uses; 0 (SUCCESS) and unknown numbers have no variant.
    pub fn from_number(number: i64) -> Option<Code> {
        match number {
            0x0100 => Some(Code::Authentication),
            0x0200 => Some(Code::Authorization),
            0x0400 => Some(Code::NoExists),
            0x0800 => Some(Code::Action),
            0x1000 => Some(Code::XmlRpcApi),
            0x2000 => Some(Code::Internal),
            0x4000 => Some(Code::Allocate),
            0x8000 => Some(Code::Locked),
            0xF002 => Some(Code::Transport),
            0xF008 => Some(Code::Timeout),
            _ => None,
        }
    }

    pub fn number(self) -> i64 {
        match self {
            Code::Authentication => 0x0100,
            Code::Authorization => 0x0200,
            Code::NoExists => 0x0400,
            Code::Action => 0x0800,
            Code::XmlRpcApi => 0x1000,
            Code::Internal => 0x2000,
            Code::Allocate => 0x4000,
            Code::Locked => 0x8000,
            Code::Transport => 0xF002,
            Code::Timeout => 0xF008,
        }
    }

    /// The error for a failed `call` on `object` (e.g. `network 5`, `cluster 'x'`). One arm
    /// per code, so it stays whole.
    pub fn error(self, call: &'static str, object: impl Into<String>, message: impl Into<String>) -> Error {
        let (object, message) = (object.into(), message.into());
        match self {
            Code::Authentication => Error::Authentication { call, object, message },
            Code::Authorization => Error::Authorization { call, object, message },
            Code::NoExists => Error::NoExists { call, object, message },
            Code::Action => Error::Action { call, object, message },
            Code::XmlRpcApi => Error::XmlRpcApi { call, object, message },
            Code::Internal => Error::Internal { call, object, message },
            Code::Allocate => Error::Allocate { call, object, message },
            Code::Locked => Error::Locked { call, object, message },
            Code::Transport => Error::Transport { call, object, message },
            Code::Timeout => Error::Timeout { call, object, message },
        }
    }
}

impl Error {
    /// Code, call and oned's message of a failed OpenNebula call; `None` for the lifecycle
    /// refusals.
    fn failed_call(&self) -> Option<(Code, &'static str, &str)> {
        let (code, call, message) = match self {
            Error::Authentication { call, message, .. } => (Code::Authentication, call, message),
            Error::Authorization { call, message, .. } => (Code::Authorization, call, message),
            Error::NoExists { call, message, .. } => (Code::NoExists, call, message),
            Error::Action { call, message, .. } => (Code::Action, call, message),
            Error::XmlRpcApi { call, message, .. } => (Code::XmlRpcApi, call, message),
            Error::Internal { call, message, .. } => (Code::Internal, call, message),
            Error::Allocate { call, message, .. } => (Code::Allocate, call, message),
            Error::Locked { call, message, .. } => (Code::Locked, call, message),
            Error::Transport { call, message, .. } => (Code::Transport, call, message),
            Error::Timeout { call, message, .. } => (Code::Timeout, call, message),
            Error::Unmanaged { .. }
            | Error::InvalidResourceTypes { .. }
            | Error::InvalidSelection { .. }
            | Error::NotInProvision { .. }
            | Error::MultipleElastic { .. }
            | Error::NoElasticNetwork
            | Error::MissingId { .. }
            | Error::UnknownAr { .. }
            | Error::Checkpoint { .. } => return None,
        };
        Some((code, call, message))
    }

    /// The OpenNebula code of a failed call; `None` for the lifecycle refusals.
    pub fn code(&self) -> Option<Code> {
        self.failed_call().map(|(code, _, _)| code)
    }

    /// oned's own message (or the transport's), for the OpenNebula errors.
    pub fn message(&self) -> Option<&str> {
        self.failed_call().map(|(_, _, message)| message)
    }

    /// The call that failed (`one.cluster.delete`), for the OpenNebula errors.
    pub fn call(&self) -> Option<&'static str> {
        self.failed_call().map(|(_, call, _)| call)
    }

    pub fn is_no_exists(&self) -> bool {
        self.code() == Some(Code::NoExists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_errors_name_the_call_and_object() {
        for number in [0x100, 0x200, 0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000, 0xF002, 0xF008] {
            let code = Code::from_number(number).unwrap();
            assert_eq!(code.number(), number);
            let error = code.error("one.vn.allocate", "network 'x'", "boom");
            assert_eq!(error.code(), Some(code));
            assert_eq!(error.call(), Some("one.vn.allocate"));
            let text = error.to_string();
            assert!(text.starts_with("one.vn.allocate "), "{text}");
            assert!(text.contains("network 'x'") && text.contains("boom"), "{text}");
        }
        assert_eq!(Code::from_number(0), None);
        assert!(Code::NoExists.error("one.host.info", "host 3", "").is_no_exists());
        assert!(!Error::NoElasticNetwork.is_no_exists());
    }
}
