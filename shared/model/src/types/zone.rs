//! `Zone`: a zone known to the global control plane.

model! {
    pub struct ZoneSpec {
        /// A disabled zone is refused at KDS connect; absent means enabled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enabled: Option<bool>,
    }
}

impl ZoneSpec {
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}
