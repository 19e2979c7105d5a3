//! OpenIM error codes and the error type every service returns. Codes travel between services in
//! gRPC metadata (`openim-errcode`) so the API and gateway can answer clients with the same code.

use std::fmt;

/// An OpenIM error code (the `errCode` clients see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrCode(pub i32);

impl ErrCode {
    pub const SERVER_INTERNAL: Self = Self(500);
    pub const ARGS: Self = Self(1001);
    pub const NO_PERMISSION: Self = Self(1002);
    pub const DUPLICATE_KEY: Self = Self(1003);
    pub const RECORD_NOT_FOUND: Self = Self(1004);
    pub const USER_ID_NOT_FOUND: Self = Self(1101);
    pub const REGISTERED_ALREADY: Self = Self(1102);
    pub const GROUP_ID_NOT_FOUND: Self = Self(1201);
    pub const GROUP_ID_EXISTED: Self = Self(1202);
    pub const NOT_IN_GROUP_YET: Self = Self(1203);
    pub const DISMISSED_ALREADY: Self = Self(1204);
    pub const GROUP_TYPE_NOT_SUPPORT: Self = Self(1205);
    pub const GROUP_REQUEST_HANDLED: Self = Self(1206);
    pub const CAN_NOT_ADD_YOURSELF: Self = Self(1301);
    /// The receiver has the sender on its blacklist.
    pub const BLOCKED_BY_PEER: Self = Self(1302);
    /// Friend verification is on and the sender is not the receiver's friend.
    pub const NOT_PEERS_FRIEND: Self = Self(1303);
    pub const RELATIONSHIP_ALREADY: Self = Self(1304);
    pub const FRIEND_REQUEST_HANDLED: Self = Self(1305);
    pub const MESSAGE_HAS_READ_DISABLE: Self = Self(1401);
    pub const MUTED_IN_GROUP: Self = Self(1402);
    pub const MUTED_GROUP: Self = Self(1403);
    pub const MSG_ALREADY_REVOKE: Self = Self(1404);
    pub const TOKEN_EXPIRED: Self = Self(1501);
    pub const TOKEN_INVALID: Self = Self(1502);
    pub const TOKEN_MALFORMED: Self = Self(1503);
    pub const TOKEN_NOT_VALID_YET: Self = Self(1504);
    pub const TOKEN_UNKNOWN: Self = Self(1505);
    pub const TOKEN_KICKED: Self = Self(1506);
    pub const TOKEN_NOT_EXIST: Self = Self(1507);
    pub const CONN_OVER_MAX_NUM_LIMIT: Self = Self(1601);
    pub const CONN_ARGS: Self = Self(1602);
    pub const PUSH_MSG: Self = Self(1603);
    /// Not an OpenIM v3.8 code (it has no send limit): a user sent faster than
    /// `msggateway.send_rate_per_sec`. The SDK marks the message failed; resending it works.
    pub const SEND_RATE_LIMIT: Self = Self(1605);
    /// The gateway could not read a frame (`WSDataError`).
    pub const WS_DATA: Self = Self(3001);

    /// OpenIM's short name for the code (its `errMsg` when none is given).
    pub fn name(self) -> &'static str {
        match self.0 {
            500 => "ServerInternalError",
            1001 => "ArgsError",
            1002 => "NoPermissionError",
            1003 => "DuplicateKeyError",
            1004 => "RecordNotFoundError",
            1101 => "UserIDNotFoundError",
            1102 => "RegisteredAlreadyError",
            1201 => "GroupIDNotFoundError",
            1202 => "GroupIDExisted",
            1203 => "NotInGroupYetError",
            1204 => "DismissedAlreadyError",
            1205 => "GroupTypeNotSupport",
            1206 => "GroupRequestHandled",
            1301 => "CanNotAddYourselfError",
            1302 => "BlockedByPeer",
            1303 => "NotPeersFriend",
            1304 => "RelationshipAlreadyError",
            1305 => "FriendRequestHandled",
            1401 => "MessageHasReadDisable",
            1402 => "MutedInGroup",
            1403 => "MutedGroup",
            1404 => "MsgAlreadyRevoke",
            1501 => "TokenExpiredError",
            1502 => "TokenInvalidError",
            1503 => "TokenMalformedError",
            1504 => "TokenNotValidYetError",
            1505 => "TokenUnknownError",
            1506 => "TokenKickedError",
            1507 => "TokenNotExistError",
            1601 => "ConnOverMaxNumLimit",
            1602 => "ConnArgsErr",
            1603 => "PushMsgErr",
            3001 => "WSDataError",
            90004 => "NetworkError",
            90007 => "DataError",
            _ => "UnknownError",
        }
    }
}

/// An error with an OpenIM code, a message and an optional detail (`errDlt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImError {
    pub code: ErrCode,
    pub msg: String,
    pub detail: String,
}

pub type ImResult<T> = Result<T, ImError>;

impl ImError {
    pub fn new(code: ErrCode, detail: impl Into<String>) -> Self {
        Self { code, msg: code.name().to_owned(), detail: detail.into() }
    }

    pub fn args(detail: impl Into<String>) -> Self {
        Self::new(ErrCode::ARGS, detail)
    }

    pub fn no_permission(detail: impl Into<String>) -> Self {
        Self::new(ErrCode::NO_PERMISSION, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrCode::RECORD_NOT_FOUND, detail)
    }

    /// An internal failure; the cause is logged by whoever handles the error.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrCode::SERVER_INTERNAL, detail)
    }
}

impl fmt::Display for ImError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.msg, self.code.0)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for ImError {}

const CODE_KEY: &str = "openim-errcode";
/// gRPC metadata key of an error message that is not its code's name.
const MSG_KEY: &str = "openim-errmsg-bin";

impl From<ImError> for tonic::Status {
    fn from(e: ImError) -> Self {
        let grpc = match e.code {
            ErrCode::SERVER_INTERNAL => tonic::Code::Internal,
            ErrCode::ARGS => tonic::Code::InvalidArgument,
            ErrCode::NO_PERMISSION => tonic::Code::PermissionDenied,
            ErrCode::RECORD_NOT_FOUND | ErrCode::USER_ID_NOT_FOUND | ErrCode::GROUP_ID_NOT_FOUND => {
                tonic::Code::NotFound
            }
            c if (1501..=1507).contains(&c.0) => tonic::Code::Unauthenticated,
            _ => tonic::Code::FailedPrecondition,
        };
        let mut status = tonic::Status::new(grpc, e.detail);
        if let Ok(v) = e.code.0.to_string().parse() {
            status.metadata_mut().insert(CODE_KEY, v);
        }
        // A message other than the code's name (a webhook's own errMsg) travels beside it.
        if e.msg != e.code.name() {
            status.metadata_mut().insert_bin(MSG_KEY, tonic::metadata::MetadataValue::from_bytes(e.msg.as_bytes()));
        }
        status
    }
}

impl From<tonic::Status> for ImError {
    fn from(s: tonic::Status) -> Self {
        let code = s
            .metadata()
            .get(CODE_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(ErrCode)
            .unwrap_or(ErrCode::SERVER_INTERNAL);
        let detail = if code == ErrCode::SERVER_INTERNAL && s.metadata().get(CODE_KEY).is_none() {
            format!("rpc {:?}: {}", s.code(), s.message())
        } else {
            s.message().to_owned()
        };
        let mut e = Self::new(code, detail);
        if let Some(msg) = s.metadata().get_bin(MSG_KEY).and_then(|v| v.to_bytes().ok()) {
            e.msg = String::from_utf8_lossy(&msg).into_owned();
        }
        e
    }
}

/// Maps a storage failure to the error a client sees, logging backend faults (the place they
/// are handled).
pub fn from_store(e: openim_storage::StoreError) -> ImError {
    use openim_storage::StoreError;
    match e {
        StoreError::Duplicate(what) => ImError::new(ErrCode::DUPLICATE_KEY, format!("{what} already exists")),
        StoreError::NotFound(what) => ImError::new(ErrCode::RECORD_NOT_FOUND, format!("{what} not found")),
        StoreError::Backend(e) => {
            tracing::error!(error = %e, "Storage backend failed.");
            ImError::internal(e)
        }
    }
}

/// Converts a storage failure straight into a gRPC status.
pub fn store_status(e: openim_storage::StoreError) -> tonic::Status {
    from_store(e).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_a_grpc_round_trip() {
        for code in [ErrCode::ARGS, ErrCode::TOKEN_KICKED, ErrCode::GROUP_ID_NOT_FOUND, ErrCode::SERVER_INTERNAL] {
            let e = ImError::new(code, "why");
            let back = ImError::from(tonic::Status::from(e.clone()));
            assert_eq!(back, e);
        }
    }

    #[test]
    fn a_plain_status_is_internal_and_keeps_its_message() {
        let e = ImError::from(tonic::Status::unavailable("connection refused"));
        assert_eq!(e.code, ErrCode::SERVER_INTERNAL);
        assert!(e.detail.contains("connection refused"), "{}", e.detail);
    }
}
