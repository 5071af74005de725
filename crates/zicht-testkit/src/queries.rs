//! Questions as tests and benchmarks ask them: [`Ask`] builds a wire `QueryRequest` step by
//! step, so a test reads as the question it asks (`Ask::youth_in_care(2024).by("stay_group")`).
//! Values are taken as given, valid or not: tests also ask what a node must refuse.

use std::time::Duration;

use zicht_model::{CodeList, Dimension, Purpose, Template};
use zicht_proto::v1 as pb;

/// A code as a request carries it: a domain value's code, or any text.
pub trait Code {
    /// The text on the wire.
    fn code_text(&self) -> String;
}

impl Code for &str {
    fn code_text(&self) -> String {
        (*self).to_owned()
    }
}

impl Code for String {
    fn code_text(&self) -> String {
        self.clone()
    }
}

impl Code for Template {
    fn code_text(&self) -> String {
        self.code().to_owned()
    }
}

impl Code for Dimension {
    fn code_text(&self) -> String {
        self.code().to_owned()
    }
}

impl Code for Purpose {
    fn code_text(&self) -> String {
        self.code().to_owned()
    }
}

/// A question under construction. By default: the template's natural purpose
/// (`capaciteitsmonitoring` for capacity, `bovenregionale-sturing` otherwise) and scope
/// (peildatum 2025-07-01 for capacity and transition18, calendar year 2024 otherwise), no
/// filters, no grouping, the template's current version.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    request: pb::QueryRequest,
    deadline: Duration,
}

impl Ask {
    /// `template` (a [`Template`] or any text) with its defaults.
    pub fn new(template: impl Code) -> Ask {
        let template = template.code_text();
        let known = Template::from_code(&template);
        let purpose = match known {
            Some(Template::Capacity) => Purpose::Capaciteitsmonitoring,
            _ => Purpose::BovenregionaleSturing,
        };
        let scope = match known {
            Some(Template::Capacity | Template::Transition18) => {
                pb::query_request::Scope::Peildatum(date(2025, 7, 1))
            }
            _ => pb::query_request::Scope::Period(zicht_proto::domain::calendar_year(2024)),
        };
        Ask {
            request: pb::QueryRequest {
                template_version: known.map_or(0, Template::version),
                template,
                purpose: purpose.code().to_owned(),
                scope: Some(scope),
                ..Default::default()
            },
            deadline: Duration::from_secs(5),
        }
    }

    /// `capacity` on its default peildatum.
    pub fn capacity() -> Ask {
        Ask::new(Template::Capacity)
    }

    /// `youth_in_care` over calendar year `year`.
    pub fn youth_in_care(year: i32) -> Ask {
        Ask::new(Template::YouthInCare).year(year)
    }

    /// For `purpose` (a [`Purpose`] or any text, empty included).
    pub fn purpose(mut self, purpose: impl Code) -> Ask {
        self.request.purpose = purpose.code_text();
        self
    }

    /// Over calendar year `year`.
    pub fn year(self, year: i32) -> Ask {
        self.scope(pb::query_request::Scope::Period(
            zicht_proto::domain::calendar_year(year),
        ))
    }

    /// Over the inclusive period `from..=to`, each `(year, month, day)`, valid dates or not.
    pub fn period(self, from: (i32, i32, i32), to: (i32, i32, i32)) -> Ask {
        self.scope(pb::query_request::Scope::Period(pb::Period {
            from: Some(date(from.0, from.1, from.2)),
            to: Some(date(to.0, to.1, to.2)),
        }))
    }

    /// On peildatum `year-month-day`, a valid date or not.
    pub fn peildatum(self, year: i32, month: i32, day: i32) -> Ask {
        self.scope(pb::query_request::Scope::Peildatum(date(year, month, day)))
    }

    /// With `scope` as it goes on the wire.
    pub fn scope(mut self, scope: pb::query_request::Scope) -> Ask {
        self.request.scope = Some(scope);
        self
    }

    /// Without a scope.
    pub fn no_scope(mut self) -> Ask {
        self.request.scope = None;
        self
    }

    /// Grouped by `dimension` too (after those named before).
    pub fn by(mut self, dimension: impl Code) -> Ask {
        self.request.group_by.push(dimension.code_text());
        self
    }

    /// Grouped by each of `dimensions`, in order.
    pub fn by_all(self, dimensions: &[&str]) -> Ask {
        dimensions.iter().fold(self, |ask, d| ask.by(*d))
    }

    /// Keeping the units whose `dimension` takes one of `values`.
    pub fn filter(self, dimension: impl Code, values: &[&str]) -> Ask {
        self.filtered(dimension, values, false)
    }

    /// Keeping the units whose `dimension` takes none of `values` (`!=`).
    pub fn exclude(self, dimension: impl Code, values: &[&str]) -> Ask {
        self.filtered(dimension, values, true)
    }

    fn filtered(mut self, dimension: impl Code, values: &[&str], exclude: bool) -> Ask {
        self.request.filters.push(pb::Filter {
            dimension: dimension.code_text(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            exclude,
        });
        self
    }

    /// Asking for template version `version`.
    pub fn version(mut self, version: u32) -> Ask {
        self.request.template_version = version;
        self
    }

    /// With `deadline` for [`Ask::request`] (default 5 s).
    pub fn deadline(mut self, deadline: Duration) -> Ask {
        self.deadline = deadline;
        self
    }

    /// The wire request.
    pub fn wire(&self) -> pb::QueryRequest {
        self.request.clone()
    }

    /// The wire request as a gRPC request with the deadline.
    pub fn request(&self) -> tonic::Request<pb::QueryRequest> {
        let mut request = tonic::Request::new(self.wire());
        request.set_timeout(self.deadline);
        request
    }
}

/// A wire date from its parts, valid or not.
pub fn date(year: i32, month: i32, day: i32) -> pb::Date {
    pb::Date { year, month, day }
}

/// The true cells of `request` on `store` (the data owner's exact path, as `zicht query
/// --database` runs it): the truth an answer's published cells are checked against.
pub async fn truth(
    store: &zicht_store::Store,
    region: zicht_model::Region,
    request: &pb::QueryRequest,
) -> std::collections::BTreeMap<Vec<String>, u64> {
    let query = zicht_node::convert::query(request).unwrap();
    let disclosure = zicht_node::Disclosure::new(Default::default(), Some(region), None).unwrap();
    let call = zicht_node::Call {
        store,
        disclosure: &disclosure,
        query: &query,
        exact: true,
        requester: "owner",
        person: None,
        today: zicht_node::today(),
    };
    zicht_node::execute(&call)
        .await
        .unwrap()
        .table
        .rows
        .into_iter()
        .map(|row| (row.key, row.count.value))
        .collect()
}
