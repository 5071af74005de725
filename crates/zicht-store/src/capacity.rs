//! The `capacity` template's query: places and occupancy per group, at a peildatum.

use chrono::NaiveDate;
use zicht_model::{CodeList, Dimension};

use crate::{on_pool, query_error, Store, StoreError};

/// One group of a capacity result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityRow {
    /// One value per group-by dimension, in request order (`""` where absent).
    pub key: Vec<String>,
    /// Facilities (facility x care type) in the group.
    pub facilities: i64,
    /// Contracted places.
    pub places: i64,
    /// Occupied places.
    pub occupied: i64,
}

/// The column behind a capacity dimension; `None` for dimensions capacity cannot group by.
fn column(dimension: Dimension) -> Option<&'static str> {
    match dimension {
        Dimension::PlacementRegion => Some("c.placement_region"),
        Dimension::Provider => Some("c.provider"),
        Dimension::CareType => Some("c.care_type"),
        Dimension::Setting => Some("COALESCE(c.setting, '')"),
        Dimension::LocationMunicipality => Some("c.location_municipality"),
        Dimension::Facility => Some("c.facility"),
        Dimension::Financing => Some("COALESCE(c.financing, '')"),
        _ => None,
    }
}

/// Why a capacity query could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("capacity cannot be grouped by {0}")]
pub struct UnsupportedDimension(pub &'static str);

impl Store {
    /// Capacity per group on `peildatum`: for every facility and care type, the latest count on
    /// or before that day. SQL on the store; rows never come into memory unaggregated.
    pub async fn capacity(
        &self,
        peildatum: NaiveDate,
        group_by: &[Dimension],
    ) -> Result<Result<Vec<CapacityRow>, UnsupportedDimension>, StoreError> {
        let mut columns = Vec::with_capacity(group_by.len());
        for &dimension in group_by {
            match column(dimension) {
                Some(c) => columns.push(c),
                None => return Ok(Err(UnsupportedDimension(dimension.code()))),
            }
        }
        let keys: String = columns.iter().map(|c| format!("{c}, ")).collect();
        let group = if columns.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {0} ORDER BY {0}", columns.join(", "))
        };
        let sql = format!(
            "SELECT {keys}COUNT(*), COALESCE(SUM(c.places), 0), COALESCE(SUM(c.occupied), 0) \
             FROM capacity c WHERE c.peildatum = (SELECT MAX(l.peildatum) FROM capacity l \
             WHERE l.provider = c.provider AND l.facility = c.facility \
             AND l.care_type = c.care_type AND l.peildatum <= $1){group}"
        );
        let width = columns.len();
        let rows = on_pool!(self, pool => {
            use sqlx::Row;
            sqlx::query(&sql)
                .bind(peildatum)
                .fetch_all(pool)
                .await
                .map_err(query_error("query capacity"))?
                .into_iter()
                .map(|row| -> Result<CapacityRow, sqlx::Error> {
                    let key = crate::read_key(&row, width)?;
                    Ok(CapacityRow {
                        key,
                        facilities: row.try_get(width)?,
                        places: row.try_get(width + 1)?,
                        occupied: row.try_get(width + 2)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error("read capacity"))?
        });
        // A query over no facility gives one all-zero row without groups; say "nothing" instead.
        Ok(Ok(rows.into_iter().filter(|r| r.facilities > 0).collect()))
    }
}
