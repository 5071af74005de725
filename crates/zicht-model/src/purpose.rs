//! The register of processing purposes (doelbinding: every request names one).

use crate::codes::{code_list, CodeList};

code_list! {
    /// A processing activity a request or consent is bound to. Each has a URI that audit records
    /// carry as `dpl.core.processing_activity_id`.
    pub enum Purpose: "purpose" {
        Capaciteitsmonitoring = ("capaciteitsmonitoring", "Monitoring van capaciteit en bezetting"),
        BovenregionaleSturing = ("bovenregionale-sturing", "Bovenregionale sturing op zorgaanbod"),
        AchttienPlusMonitoring = ("18plus-monitoring", "Monitoring van de overgang naar 18+"),
        TriagePlaatsing = ("triage-plaatsing", "Bovenregionale triage en plaatsing"),
        WarmeOverdracht = ("warme-overdracht", "Warme overdracht bij verhuizing na 18"),
    }
}

impl Purpose {
    /// The processing activity URI of this purpose.
    pub fn uri(self) -> String {
        format!("urn:zicht:purpose:{}", self.code())
    }
}
