//! The allow-listed query templates and the closed list of group-by dimensions each allows.
//! Peers can only ask these; never free SQL.

use crate::codes::code_list;

code_list! {
    /// A registered, versioned query template.
    pub enum Template: "template" {
        Capacity = ("capacity", "Capaciteit en bezetting"),
        YouthInCare = ("youth_in_care", "Jeugdigen in zorg"),
        Flows = ("flows", "Instroom, uitstroom en doorplaatsing"),
        LengthOfStay = ("length_of_stay", "Verblijfsduur"),
        Transition18 = ("transition18", "Overgang naar 18+"),
        ConsentedRecords = ("consented_records", "Records met toestemming"),
    }
}

code_list! {
    /// A dimension a result can be grouped by.
    pub enum Dimension: "dimension" {
        OriginRegion = ("origin_region", "Herkomstregio"),
        PlacementRegion = ("placement_region", "Plaatsingsregio"),
        CareType = ("care_type", "Zorgvorm"),
        StayGroup = ("stay_group", "Verblijfsgroep"),
        LandsdeelInside = ("landsdeel_inside", "Binnen of buiten eigen landsdeel"),
        AgeBand = ("age_band", "Leeftijdsklasse"),
        LegalBasis = ("legal_basis", "Juridisch kader"),
        Provider = ("provider", "Aanbieder"),
        Setting = ("setting", "Setting"),
        LocationMunicipality = ("location_municipality", "Gemeente locatie"),
        FlowKind = ("flow_kind", "Instroom, uitstroom of doorplaatsing"),
        OutflowDestination = ("outflow_destination", "Uitstroombestemming"),
        OutflowProfile = ("outflow_profile", "Uitstroomprofiel"),
        Toekomstplan = ("toekomstplan", "Toekomstplan aanwezig"),
        After18Funding = ("after18_funding", "Financiering na 18"),
        Big5Domain = ("big5_domain", "BIG5-domein"),
        Big5Status = ("big5_status", "BIG5-status"),
    }
}

impl Template {
    /// The current version of the template; a request names the version it was written for.
    pub fn version(self) -> u32 {
        1
    }

    /// The group-by dimensions this template allows (the finest it can ever answer).
    pub fn dimensions(self) -> &'static [Dimension] {
        use Dimension::*;
        match self {
            Template::Capacity => &[
                PlacementRegion,
                Provider,
                CareType,
                Setting,
                LocationMunicipality,
            ],
            Template::YouthInCare => &[
                OriginRegion,
                PlacementRegion,
                CareType,
                StayGroup,
                LandsdeelInside,
                AgeBand,
                LegalBasis,
            ],
            Template::Flows => &[
                FlowKind,
                CareType,
                OriginRegion,
                OutflowDestination,
                OutflowProfile,
            ],
            Template::LengthOfStay => &[CareType, StayGroup],
            Template::Transition18 => &[Toekomstplan, After18Funding, Big5Domain, Big5Status],
            Template::ConsentedRecords => &[],
        }
    }

    /// Whether the template releases person data (counts of youths, or records) rather than
    /// facility data.
    pub fn is_person_data(self) -> bool {
        self != Template::Capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::CodeList;

    #[test]
    fn every_dimension_is_used_by_some_template() {
        for &dimension in Dimension::ALL {
            assert!(
                Template::ALL
                    .iter()
                    .any(|t| t.dimensions().contains(&dimension)),
                "{dimension}"
            );
        }
    }
}
