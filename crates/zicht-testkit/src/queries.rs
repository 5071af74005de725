//! The queries tests and benchmarks ask again and again.

use zicht_proto::v1 as pb;

/// `youth_in_care` over calendar year 2024 for bovenregionale sturing, grouped by `group_by`.
pub fn youth_in_care_2024(group_by: &[&str]) -> pb::QueryRequest {
    pb::QueryRequest {
        template: "youth_in_care".to_owned(),
        template_version: 1,
        purpose: "bovenregionale-sturing".to_owned(),
        scope: Some(pb::query_request::Scope::Period(zicht_node::calendar_year(
            2024,
        ))),
        group_by: group_by.iter().map(|d| (*d).to_owned()).collect(),
        ..Default::default()
    }
}

/// `capacity` on peildatum 2025-07-01 for capaciteitsmonitoring, grouped by care type.
pub fn capacity_by_care_type() -> pb::QueryRequest {
    pb::QueryRequest {
        template: "capacity".to_owned(),
        template_version: 1,
        purpose: "capaciteitsmonitoring".to_owned(),
        scope: Some(pb::query_request::Scope::Peildatum(pb::Date {
            year: 2025,
            month: 7,
            day: 1,
        })),
        group_by: vec!["care_type".to_owned()],
        ..Default::default()
    }
}
