//! zicht's domain: code lists from the reference data as typed enums, identifiers, the records a
//! regional node holds and their invariants. No I/O, no other zicht crate.
//!
//! Dutch domain words stay Dutch where they are the data teams' words: jeugdhulpregio (youth-care
//! region), verblijf (residential stay), uitstroom (outflow), toekomstplan (plan for after 18),
//! JeugdhulpPlus (secure closed care), peildatum (reference date).

mod care;
pub mod codes;
mod date;
mod identity;
mod ids;
mod measures;
mod municipality;
mod purpose;
mod query;
mod records;
mod region;
mod result;
pub mod spuk;
mod templates;
mod transition;

pub use care::{
    CareType, Financing, LegalBasis, OutflowDestination, OutflowProfile, Setting, StayGroup,
};
pub use codes::{CodeList, UnknownCode};
pub use date::{
    age_on, parse_date, parse_period, DateFormat, InvalidDate, InvalidPeriod, InvalidTimestamp,
    Timestamp, DATE_RANGE,
};
pub use identity::{InvalidRole, PeerIdentity, Role};
pub use ids::{is_bsn, ConsentId, InvalidId, NodeName, PeerId, YouthId};
pub use measures::{parse_duration, parse_time, Measure, MeasureKind};
pub use municipality::{
    current_municipalities, municipality, region_of_municipality, regions_of_municipality,
    Municipality, MUNICIPALITIES,
};
pub use purpose::Purpose;
pub use query::{filter_groups, Filter, Query, Scope};
pub use records::{
    Capacity, Consent, InvalidName, Name, Placement, Recipient, Transition18Check, Violation,
};
pub use region::{Landsdeel, Membership, Network, OriginRegion, PlacementRegion, Region};
pub use result::{FieldValue, Published, Record, RecordKind, Row, Statistic, Table};
pub use templates::MEMBER_TOTAL;
pub use templates::{
    birth_cutoffs, stay_length_band, AgeBand, Dimension, FlowKind, LandsdeelInside, Template,
    AGES_ON_PEILDATUM, NOT_APPLICABLE, STAY_LENGTHS, TURNS_18, UNKNOWN,
};
pub use transition::{After18Funding, Big5Domain, Big5Status};

/// Re-exported so callers name dates with the same type the records use.
pub use chrono::NaiveDate;
