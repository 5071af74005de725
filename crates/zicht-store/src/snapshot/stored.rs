//! The snapshot kept in the database beside the tables it was read from (`count_snapshot`,
//! migration 0011), so a fresh process (`zicht query --database`, a node that restarts)
//! reads one value instead of every row. It is a cache of the database by the database: it is
//! used only when its generation is the database's (one statement reads both), it is written
//! only while the generation it was built at still holds, and a value that does not decode
//! into a well-formed snapshot is ignored and rebuilt from the tables.
//!
//! The value is fixed-width little-endian: a version tag, the codes, then each table's rows
//! and per-youth boundaries. Record keys are in it when the snapshot was built with the key
//! function (named by its fingerprint in the row, never the secret).

use super::{Check, Code, Mark, PerYouth, Snapshot, Stay, NO_CODE};
use crate::{on_pool, query_error, RecordKeys, Store, StoreError};

/// The first bytes of a stored snapshot: the format's version.
const TAG: &[u8; 8] = b"zicht:s3";

const LOAD: &str = "SELECT s.generation, s.record_keys, s.body FROM count_snapshot s \
     JOIN data_generation g ON g.generation = s.generation";
const CLEAR: &str = "DELETE FROM count_snapshot";
const SAVE: &str = "INSERT INTO count_snapshot (generation, record_keys, body) \
     SELECT $1, $2, $3 FROM data_generation WHERE generation = $1";

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
}

/// Any way a stored value is not a snapshot this version wrote.
#[derive(Debug)]
struct Malformed;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(Malformed)?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        self.take::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Result<u16, Malformed> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        self.take().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> Result<i32, Malformed> {
        self.take().map(i32::from_le_bytes)
    }
    /// A count of items that each take at least `width` bytes (so a corrupt count cannot ask
    /// for more memory than the value holds).
    fn len(&mut self, width: usize) -> Result<usize, Malformed> {
        let n = self.u32()? as usize;
        if n.saturating_mul(width) > self.0.len() {
            return Err(Malformed);
        }
        Ok(n)
    }
}

fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let keyed = snapshot.keys.is_some();
    let mut w = Writer(Vec::with_capacity(
        64 + snapshot.placements.rows.len() * 36 + snapshot.checks.rows.len() * 28,
    ));
    w.0.extend_from_slice(TAG);
    w.u8(u8::from(keyed));
    texts(&mut w, &snapshot.codes);
    w.len(snapshot.placements.rows.len());
    for s in &snapshot.placements.rows {
        w.i32(s.start);
        w.i32(s.end);
        w.i32(s.birth);
        if keyed {
            w.u32(s.record_key.unwrap_or(0));
        }
        for code in [
            s.care_type,
            s.origin_region,
            s.placement_region,
            s.legal_basis,
            s.outflow_destination,
            s.care_rank,
        ] {
            w.u16(code);
        }
        w.u8(s.outflow_profile);
        w.u32(s.provider_rank);
    }
    bounds(&mut w, &snapshot.placements.bounds);
    w.len(snapshot.checks.rows.len());
    for c in &snapshot.checks.rows {
        w.i32(c.date);
        w.i32(c.birth);
        if keyed {
            w.u32(c.record_key.unwrap_or(0));
        }
        w.u8(u8::from(c.toekomstplan));
        w.u16(c.after18_funding);
        c.big5.iter().for_each(|&b| w.u16(b));
    }
    bounds(&mut w, &snapshot.checks.bounds);
    texts(&mut w, &snapshot.names);
    w.len(snapshot.measures.rows.len());
    for m in &snapshot.measures.rows {
        w.i32(m.day);
        if keyed {
            w.u32(m.record_key.unwrap_or(0));
        }
        w.u16(m.kind);
        w.u16(m.placement_region);
        w.u32(m.provider);
        w.u32(m.facility);
    }
    bounds(&mut w, &snapshot.measures.bounds);
    w.len(snapshot.separaties.rows.len());
    snapshot.separaties.rows.iter().for_each(|&d| w.i32(d));
    bounds(&mut w, &snapshot.separaties.bounds);
    w.0
}

fn texts(w: &mut Writer, texts: &[String]) {
    w.len(texts.len());
    for text in texts {
        w.len(text.len());
        w.0.extend_from_slice(text.as_bytes());
    }
}

fn read_texts(r: &mut Reader<'_>) -> Result<Vec<String>, Malformed> {
    let mut texts = Vec::with_capacity(r.len(4)?);
    for _ in 0..texts.capacity() {
        let n = r.len(1)?;
        let (text, rest) = r.0.split_at_checked(n).ok_or(Malformed)?;
        texts.push(String::from_utf8(text.to_vec()).map_err(|_| Malformed)?);
        r.0 = rest;
    }
    Ok(texts)
}

fn bounds(w: &mut Writer, bounds: &[u32]) {
    w.len(bounds.len());
    bounds.iter().for_each(|&b| w.u32(b));
}

/// The snapshot in `body`, checked to be one the engine can run over: every code names one
/// of its codes, and the boundaries split the rows in order.
fn decode(body: &[u8], generation: i64, keys: Option<String>) -> Result<Snapshot, Malformed> {
    let mut r = Reader(body);
    if &r.take::<8>()? != TAG {
        return Err(Malformed);
    }
    let keyed = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(Malformed),
    };
    if keyed != keys.is_some() {
        return Err(Malformed);
    }
    let codes = read_texts(&mut r)?;
    let code = |c: Code| match usize::from(c) < codes.len() {
        true => Ok(c),
        false => Err(Malformed),
    };
    let key = |r: &mut Reader<'_>| -> Result<Option<u32>, Malformed> {
        keyed.then(|| r.u32()).transpose()
    };
    let mut stays = Vec::with_capacity(r.len(29)?);
    for _ in 0..stays.capacity() {
        let (start, end, birth) = (r.i32()?, r.i32()?, r.i32()?);
        let record_key = key(&mut r)?;
        let (care_type, origin_region, placement_region, legal_basis) = (
            code(r.u16()?)?,
            code(r.u16()?)?,
            code(r.u16()?)?,
            code(r.u16()?)?,
        );
        let outflow_destination = match r.u16()? {
            NO_CODE => NO_CODE,
            c => code(c)?,
        };
        let care_rank = r.u16()?;
        let outflow_profile = r.u8()?;
        if outflow_profile > 4 {
            return Err(Malformed);
        }
        stays.push(Stay {
            start,
            end,
            birth,
            record_key,
            care_type,
            origin_region,
            placement_region,
            legal_basis,
            outflow_destination,
            outflow_profile,
            care_rank,
            provider_rank: r.u32()?,
        });
    }
    let placements = per_youth(&mut r, stays)?;
    let mut checks = Vec::with_capacity(r.len(21)?);
    for _ in 0..checks.capacity() {
        let date = r.i32()?;
        let birth = r.i32()?;
        let record_key = key(&mut r)?;
        let toekomstplan = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(Malformed),
        };
        let after18_funding = code(r.u16()?)?;
        let mut big5 = [NO_CODE; 5];
        for slot in &mut big5 {
            *slot = code(r.u16()?)?;
        }
        checks.push(Check {
            date,
            birth,
            record_key,
            toekomstplan,
            after18_funding,
            big5,
        });
    }
    let checks = per_youth(&mut r, checks)?;
    let names = read_texts(&mut r)?;
    let name = |n: u32| match (n as usize) < names.len() {
        true => Ok(n),
        false => Err(Malformed),
    };
    let mut marks = Vec::with_capacity(r.len(16)?);
    for _ in 0..marks.capacity() {
        let day = r.i32()?;
        let record_key = key(&mut r)?;
        marks.push(Mark {
            day,
            record_key,
            kind: code(r.u16()?)?,
            placement_region: code(r.u16()?)?,
            provider: name(r.u32()?)?,
            facility: name(r.u32()?)?,
        });
    }
    let measures = per_youth(&mut r, marks)?;
    let mut days = Vec::with_capacity(r.len(4)?);
    for _ in 0..days.capacity() {
        days.push(r.i32()?);
    }
    let separaties = per_youth(&mut r, days)?;
    if !r.0.is_empty() {
        return Err(Malformed);
    }
    Ok(Snapshot {
        generation,
        keys,
        codes,
        placements,
        checks,
        names,
        measures,
        separaties,
    })
}

/// Boundaries that start at 0, never go back, and end at the last row.
fn per_youth<T>(r: &mut Reader<'_>, rows: Vec<T>) -> Result<PerYouth<T>, Malformed> {
    let mut bounds = Vec::with_capacity(r.len(4)?);
    for _ in 0..bounds.capacity() {
        bounds.push(r.u32()?);
    }
    let ordered = bounds.windows(2).all(|w| w[0] <= w[1]);
    if bounds.first() != Some(&0) || bounds.last() != Some(&(rows.len() as u32)) || !ordered {
        return Err(Malformed);
    }
    Ok(PerYouth { rows, bounds })
}

impl Store {
    /// The snapshot stored at the database's generation, when there is one that holds the
    /// record keys asked for (`None` asks for none) and decodes.
    pub(super) async fn load_snapshot(
        &self,
        keys: Option<&RecordKeys>,
    ) -> Result<Option<Snapshot>, StoreError> {
        let row: Option<(i64, Option<String>, Vec<u8>)> = on_pool!(self, pool => {
            sqlx::query_as(LOAD)
                .fetch_optional(pool)
                .await
                .map_err(query_error("read the stored snapshot"))?
        });
        let Some((generation, stored_keys, body)) = row else {
            return Ok(None);
        };
        if keys.is_some_and(|k| stored_keys.as_deref() != Some(k.fingerprint())) {
            return Ok(None);
        }
        match decode(&body, generation, stored_keys) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(Malformed) => {
                tracing::warn!("the stored snapshot does not decode; reading the tables instead");
                Ok(None)
            }
        }
    }

    /// Stores `snapshot` in place of the one stored before, unless the data moved on since
    /// it was read (then it is stale already, and nothing is written).
    pub(super) async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let body = encode(snapshot);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(query_error("store the snapshot"))?;
            sqlx::query(CLEAR)
                .execute(&mut *tx)
                .await
                .map_err(query_error("store the snapshot"))?;
            sqlx::query(SAVE)
                .bind(snapshot.generation)
                .bind(snapshot.keys.as_deref())
                .bind(&body)
                .execute(&mut *tx)
                .await
                .map_err(query_error("store the snapshot"))?;
            tx.commit().await.map_err(query_error("store the snapshot"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(keyed: bool) -> Snapshot {
        let key = |k| keyed.then_some(k);
        let stay = Stay {
            start: 700_000,
            end: super::super::OPEN,
            birth: 690_000,
            record_key: key(7),
            care_type: 0,
            origin_region: 1,
            placement_region: 1,
            legal_basis: 2,
            outflow_destination: NO_CODE,
            outflow_profile: 0,
            care_rank: 0,
            provider_rank: 3,
        };
        let check = Check {
            date: 700_100,
            birth: 694_000,
            record_key: key(9),
            toekomstplan: true,
            after18_funding: 2,
            big5: [0, 1, 2, 1, 0],
        };
        Snapshot {
            generation: 4,
            keys: keyed.then(|| "k".to_owned()),
            codes: vec!["pleegzorg".into(), "drenthe".into(), "ots".into()],
            placements: PerYouth {
                rows: vec![
                    stay,
                    Stay {
                        start: 700_010,
                        ..stay
                    },
                ],
                bounds: vec![0, 1, 2],
            },
            checks: PerYouth {
                rows: vec![check],
                bounds: vec![0, 1],
            },
            names: vec!["Aanbieder".into(), "De Ruimte".into()],
            measures: PerYouth {
                rows: vec![Mark {
                    day: 700_020,
                    record_key: key(7),
                    kind: 0,
                    placement_region: 1,
                    provider: 0,
                    facility: 1,
                }],
                bounds: vec![0, 1],
            },
            separaties: PerYouth {
                rows: vec![700_020],
                bounds: vec![0, 1, 1],
            },
        }
    }

    fn same(a: &Snapshot, b: &Snapshot) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn a_snapshot_decodes_as_it_was_encoded() {
        for keyed in [false, true] {
            let snapshot = sample(keyed);
            let decoded = decode(&encode(&snapshot), 4, snapshot.keys.clone()).unwrap();
            assert!(same(&snapshot, &decoded), "keyed {keyed}");
        }
    }

    #[test]
    fn a_damaged_value_is_refused_not_trusted() {
        let body = encode(&sample(true));
        let keys = || Some("k".to_owned());
        // Cut anywhere, or with a byte more: refused.
        for cut in 0..body.len() {
            assert!(decode(&body[..cut], 4, keys()).is_err(), "cut at {cut}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert!(decode(&longer, 4, keys()).is_err());
        // Keys the row does not name, or none where it names some.
        assert!(decode(&body, 4, None).is_err());
        // Any single byte changed gives an error or a well-formed snapshot, never a panic.
        for at in 0..body.len() {
            let mut changed = body.clone();
            changed[at] ^= 0xff;
            let _ = decode(&changed, 4, keys());
        }
        // A code outside the codes is refused.
        let mut bad = sample(true);
        bad.placements.rows[0].care_type = 3;
        assert!(decode(&encode(&bad), 4, keys()).is_err());
    }
}
