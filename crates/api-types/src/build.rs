//! Builds, source blobs and buildpack installations.

use serde::{Deserialize, Serialize};

use crate::{AccountRef, IdRef};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackRef {
    pub url: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceBlob {
    pub url: Option<String>,
    pub version: Option<String>,
    pub checksum: Option<String>,
    pub version_description: Option<String>,
}

/// `GET /apps/{app}/builds/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub id: String,
    pub app: IdRef,
    pub status: String,
    pub buildpacks: Vec<BuildpackRef>,
    pub source_blob: SourceBlob,
    pub output_stream_url: String,
    pub release: Option<IdRef>,
    pub slug: Option<IdRef>,
    pub stack: String,
    pub user: AccountRef,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceBlobCreate {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackUrl {
    pub url: String,
}

/// `POST /apps/{app}/builds`: build the source at `source_blob.url` (a URL from
/// `POST /apps/{app}/sources`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildCreate {
    pub source_blob: SourceBlobCreate,
    /// Buildpacks for this build only; the app's list (or detection) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpacks: Option<Vec<BuildpackUrl>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceUrls {
    pub get_url: String,
    pub put_url: String,
}

/// `POST /apps/{app}/sources`: where to upload a source tarball (`PUT put_url`), and the URL
/// to give `POST /apps/{app}/builds` (`get_url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub source_blob: SourceUrls,
}

/// `GET /apps/{app}/buildpack-installations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackInstallation {
    pub ordinal: u32,
    pub buildpack: BuildpackRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackUpdate {
    pub buildpack: String,
}

/// `PUT /apps/{app}/buildpack-installations`: replaces the whole list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackInstallationsUpdate {
    pub updates: Vec<BuildpackUpdate>,
}
