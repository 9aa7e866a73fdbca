use std::collections::HashMap;

use alp_selector::Labels;

/// Label map as stored for service accounts and namespaces.
pub type LabelMap = HashMap<String, String>;

/// Envoy's peer labels overlaid by the stored service-account labels (the store wins).
pub(crate) struct Overlay<'a> {
    pub top: Option<&'a LabelMap>,
    pub bottom: Option<&'a LabelMap>,
}

impl Labels for Overlay<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.top.and_then(|m| m.get(key)).or_else(|| self.bottom.and_then(|m| m.get(key))).map(String::as_str)
    }
}
