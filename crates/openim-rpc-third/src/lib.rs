//! `openim-rpc-third`: object storage for pictures, voice, video and files (OpenIM's `/object/*`).
//!
//! Clients never send content through here. They ask for upload URLs, put the parts straight
//! into the store, and complete; a named object (`<userID>/…`) then points at the stored
//! content, which is kept once per hash: a second upload of the same bytes is answered at once
//! with the URL (OpenIM's deduplication). See `objects.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openim_common::config::{ObjectConfig, Share};
use openim_common::{ErrCode, ImError, rpc};
use openim_object::local::LocalBlobs;
use openim_object::{Blobs, UrlSigner};
use openim_proto::pb::third::{self, third_server::Third};
use openim_storage::Stores;
use tonic::{Request, Response, Status};

pub use openim_proto::pb::third::third_server::ThirdServer;

mod devices;
mod forms;
mod ids;
mod objects;

pub struct ThirdService {
    share: Share,
    stores: Stores,
    blobs: Arc<dyn Blobs>,
    cfg: ObjectConfig,
    /// Signs upload IDs, so that a client can neither forge one nor change what it names.
    ids: UrlSigner,
}

impl ThirdService {
    /// `secret` is the server secret upload IDs are signed with (the token key).
    pub fn new(share: Share, stores: Stores, blobs: Arc<dyn Blobs>, cfg: ObjectConfig, secret: &[u8]) -> Self {
        Self { share, stores, blobs, cfg, ids: UrlSigner::derive(secret, "upload-ids") }
    }
}

/// The object store a configuration names: the store, and the embedded one again when that is
/// it (for the API, which serves its URLs).
pub struct ObjectStore {
    pub blobs: Arc<dyn Blobs>,
    pub local: Option<Arc<LocalBlobs>>,
}

/// Opens the store of `cfg`; `secret` (the token key) signs its URLs.
pub fn open_store(cfg: &ObjectConfig, data_dir: &Path, secret: &[u8]) -> std::io::Result<ObjectStore> {
    if cfg.engine == "s3" {
        let s = &cfg.s3;
        let settings = openim_object::s3::S3Settings {
            endpoint: s.endpoint.clone(),
            external_endpoint: s.external_endpoint.clone(),
            bucket: s.bucket.clone(),
            region: s.region.clone(),
            access_key_id: s.access_key_id.clone(),
            secret_access_key: s.secret_access_key.clone(),
            session_token: s.session_token.clone(),
            path_style: s.path_style,
        };
        let store = openim_object::s3::S3Blobs::new(&settings)
            .map_err(|e| std::io::Error::other(format!("openim-rpc-third.yml object.s3: {e}")))?;
        return Ok(ObjectStore { blobs: Arc::new(store), local: None });
    }
    let dir = if cfg.local.dir.is_empty() { data_dir.join("objects") } else { PathBuf::from(&cfg.local.dir) };
    let local = Arc::new(LocalBlobs::open(&dir, UrlSigner::derive(secret, "urls")).map_err(|e| {
        std::io::Error::new(e.kind(), format!("open the object store {} (object.local.dir): {e}", dir.display()))
    })?);
    Ok(ObjectStore { blobs: local.clone(), local: Some(local) })
}

/// How often [`housekeep`] sweeps the store.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes what abandoned uploads leave in the store, every hour until `shutdown`: whatever is
/// older than an upload ID lives (`url_expire_secs`) and an hour more, so that no upload still
/// under way loses a part.
pub async fn housekeep(blobs: Arc<dyn Blobs>, cfg: ObjectConfig, shutdown: tokio_util::sync::CancellationToken) {
    let age = std::time::Duration::from_secs(cfg.url_expire_secs.saturating_add(3600));
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match blobs.sweep(age).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "Removed what abandoned uploads left in the object store."),
            Err(e) => tracing::warn!(error = %e, "Sweeping abandoned uploads failed; retrying in an hour."),
        }
    }
}

/// The caller, who must be a user.
fn caller<T>(req: &Request<T>) -> Result<String, Status> {
    let op = rpc::op_user_id(req);
    if op.is_empty() {
        return Err(ImError::new(ErrCode::NO_PERMISSION, "the caller is not named").into());
    }
    Ok(op)
}

#[tonic::async_trait]
impl Third for ThirdService {
    async fn part_limit(&self, _req: Request<third::PartLimitReq>) -> Result<Response<third::PartLimitResp>, Status> {
        let l = self.blobs.part_limit();
        Ok(Response::new(third::PartLimitResp {
            min_part_size: l.min_part_size,
            max_part_size: l.max_part_size,
            max_num_size: i32::try_from(l.max_num_size).unwrap_or(i32::MAX),
        }))
    }

    async fn part_size(&self, req: Request<third::PartSizeReq>) -> Result<Response<third::PartSizeResp>, Status> {
        let size = self.check_size(req.get_ref().size)?;
        let part = self.blobs.part_limit().part_size(size).map_err(objects::blob_err)?;
        Ok(Response::new(third::PartSizeResp { size: part }))
    }

    async fn initiate_multipart_upload(
        &self,
        req: Request<third::InitiateMultipartUploadReq>,
    ) -> Result<Response<third::InitiateMultipartUploadResp>, Status> {
        let op = caller(&req)?;
        let base = rpc::api_base(&req);
        Ok(Response::new(self.initiate(&op, &base, req.into_inner()).await?))
    }

    async fn auth_sign(&self, req: Request<third::AuthSignReq>) -> Result<Response<third::AuthSignResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = caller(&req)?;
        let base = rpc::api_base(&req);
        Ok(Response::new(self.sign_parts(&op, &base, req.get_ref())?))
    }

    async fn complete_multipart_upload(
        &self,
        req: Request<third::CompleteMultipartUploadReq>,
    ) -> Result<Response<third::CompleteMultipartUploadResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = caller(&req)?;
        Ok(Response::new(self.complete(&op, req.into_inner()).await?))
    }

    async fn access_url(&self, req: Request<third::AccessUrlReq>) -> Result<Response<third::AccessUrlResp>, Status> {
        // No caller for `GET /object/<name>`, which anyone holding a name may use.
        let op = rpc::op_user_id(&req);
        let base = rpc::api_base(&req);
        Ok(Response::new(self.access(&op, &base, req.get_ref()).await?))
    }

    async fn initiate_form_data(
        &self,
        req: Request<third::InitiateFormDataReq>,
    ) -> Result<Response<third::InitiateFormDataResp>, Status> {
        let op = caller(&req)?;
        let base = rpc::api_base(&req);
        Ok(Response::new(self.initiate_form(&op, &base, req.get_ref())?))
    }

    async fn complete_form_data(
        &self,
        req: Request<third::CompleteFormDataReq>,
    ) -> Result<Response<third::CompleteFormDataResp>, Status> {
        let op = caller(&req)?;
        Ok(Response::new(self.complete_form(&op, req.get_ref()).await?))
    }

    async fn delete_outdated_data(
        &self,
        req: Request<third::DeleteOutdatedDataReq>,
    ) -> Result<Response<third::DeleteOutdatedDataResp>, Status> {
        let op = caller(&req)?;
        Ok(Response::new(self.delete_outdated(&op, req.get_ref()).await?))
    }

    async fn fcm_update_token(
        &self,
        req: Request<third::FcmUpdateTokenReq>,
    ) -> Result<Response<third::FcmUpdateTokenResp>, Status> {
        let op = caller(&req)?;
        self.fcm_update_token(&op, req.get_ref()).await?;
        Ok(Response::new(third::FcmUpdateTokenResp {}))
    }

    async fn set_app_badge(
        &self,
        req: Request<third::SetAppBadgeReq>,
    ) -> Result<Response<third::SetAppBadgeResp>, Status> {
        let op = caller(&req)?;
        self.set_app_badge(&op, req.get_ref()).await?;
        Ok(Response::new(third::SetAppBadgeResp {}))
    }

    async fn upload_logs(&self, req: Request<third::UploadLogsReq>) -> Result<Response<third::UploadLogsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = caller(&req)?;
        self.upload_logs(&op, req.get_ref()).await?;
        Ok(Response::new(third::UploadLogsResp {}))
    }

    async fn delete_logs(&self, req: Request<third::DeleteLogsReq>) -> Result<Response<third::DeleteLogsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = caller(&req)?;
        self.delete_logs(&op, req.get_ref()).await?;
        Ok(Response::new(third::DeleteLogsResp {}))
    }

    async fn search_logs(&self, req: Request<third::SearchLogsReq>) -> Result<Response<third::SearchLogsResp>, Status> {
        let op = caller(&req)?;
        Ok(Response::new(self.search_logs(&op, req.get_ref()).await?))
    }
}

#[cfg(test)]
mod tests;
