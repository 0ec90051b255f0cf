//! Page-numbered and keyset paging, both done in SQL.
//!
//! A keyset cursor records the sort key, its direction, the last row's sort value and its ID;
//! the next page asks for rows strictly after that pair, so rows inserted while a client walks
//! the pages never shift the walk and no row is returned twice.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::sql::{Arg, Conn, Row, Sql};
use crate::{Result, StoreError};

/// How the caller wants a list cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// `page` from 1, `per_page` rows; returns the total.
    Page { page: u32, per_page: u32 },
    /// Rows after `cursor` (from the start when `None`), `size` at most.
    Cursor { cursor: Option<String>, size: u32 },
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Listing<T> {
    Page { data: Vec<T>, total: i64, page: u32, per_page: u32 },
    Cursor { data: Vec<T>, next_cursor: Option<String>, page_size: u32 },
}

impl<T> Listing<T> {
    /// Converts every row, keeping the paging information.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Listing<U>, E> {
        Ok(match self {
            Listing::Page { data, total, page, per_page } => {
                Listing::Page { data: data.into_iter().map(f).collect::<Result<_, E>>()?, total, page, per_page }
            }
            Listing::Cursor { data, next_cursor, page_size } => {
                Listing::Cursor { data: data.into_iter().map(f).collect::<Result<_, E>>()?, next_cursor, page_size }
            }
        })
    }

    pub fn data(&self) -> &[T] {
        match self {
            Listing::Page { data, .. } | Listing::Cursor { data, .. } => data,
        }
    }
}

/// The type of a sort column's value, as carried in a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Int,
    Text,
}

/// A sortable column: its public name, the SQL expression ordered by and its value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub name: &'static str,
    pub expr: &'static str,
    pub kind: KeyKind,
}

/// Sort order of a list: key and direction; ties are broken by `id` in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Order {
    pub key: SortKey,
    pub desc: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum CursorValue {
    Int(i64),
    Text(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CursorData {
    /// Sort key name.
    k: String,
    /// Descending.
    d: bool,
    /// Sort value of the last row.
    v: CursorValue,
    /// ID of the last row.
    i: String,
}

fn bad_cursor(why: &str) -> StoreError {
    StoreError::Invalid { field: "cursor", message: why.to_owned() }
}

fn decode_cursor(cursor: &str, order: &Order) -> Result<CursorData> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad_cursor("not a cursor returned by this list"))?;
    let data: CursorData =
        serde_json::from_slice(&bytes).map_err(|_| bad_cursor("not a cursor returned by this list"))?;
    if data.k != order.key.name || data.d != order.desc {
        return Err(bad_cursor("the cursor belongs to a different sort order"));
    }
    let kind_ok = matches!(
        (&data.v, order.key.kind),
        (CursorValue::Int(_), KeyKind::Int) | (CursorValue::Text(_), KeyKind::Text)
    );
    if !kind_ok {
        return Err(bad_cursor("not a cursor returned by this list"));
    }
    Ok(data)
}

fn encode_cursor(order: &Order, value: CursorValue, id: String) -> String {
    let data = CursorData { k: order.key.name.to_owned(), d: order.desc, v: value, i: id };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).unwrap_or_default())
}

/// What a row must expose to be keyset-paged.
pub(crate) trait Keyed {
    fn id(&self) -> &str;
    /// The value of the sort column `name` for this row.
    fn sort_value(&self, name: &str) -> SortValue;
}

/// A row's value for a sort column.
pub(crate) enum SortValue {
    Int(i64),
    Text(String),
}

/// A list query: `SELECT <select> FROM …` and `SELECT COUNT(*) FROM …` sharing one WHERE
/// clause, which `filter` appends (starting with " WHERE 1=1").
pub(crate) async fn list<T, F>(
    conn: &mut Conn<'_>,
    select: &'static str,
    count: &'static str,
    filter: F,
    order: Order,
    paging: &Paging,
) -> Result<Listing<T>>
where
    T: Row + Keyed,
    F: Fn(&mut Sql),
{
    let dir = if order.desc { " DESC" } else { " ASC" };
    match paging {
        Paging::Page { page, per_page } => {
            let mut q = Sql::new(count);
            filter(&mut q);
            let total = q.fetch_i64(conn).await?;
            let mut q = Sql::new(select);
            filter(&mut q);
            push_order(&mut q, &order, dir);
            q.push(" LIMIT ").push_bind(i64::from(*per_page));
            q.push(" OFFSET ").push_bind(i64::from(page.saturating_sub(1)) * i64::from(*per_page));
            let data = q.fetch_all(conn).await?;
            Ok(Listing::Page { data, total, page: *page, per_page: *per_page })
        }
        Paging::Cursor { cursor, size } => {
            let mut q = Sql::new(select);
            filter(&mut q);
            if let Some(cursor) = cursor {
                let c = decode_cursor(cursor, &order)?;
                q.push(" AND (").push(order.key.expr).push(", id)");
                q.push(if order.desc { " < (" } else { " > (" });
                let value = match c.v {
                    CursorValue::Int(v) => Arg::from(v),
                    CursorValue::Text(v) => Arg::from(v),
                };
                q.push_bind(value).push(", ").push_bind(c.i).push(")");
            }
            push_order(&mut q, &order, dir);
            q.push(" LIMIT ").push_bind(i64::from(*size) + 1);
            let mut data: Vec<T> = q.fetch_all(conn).await?;
            let next_cursor = if data.len() > *size as usize {
                data.truncate(*size as usize);
                data.last().map(|row| {
                    let value = match row.sort_value(order.key.name) {
                        SortValue::Int(v) => CursorValue::Int(v),
                        SortValue::Text(v) => CursorValue::Text(v),
                    };
                    encode_cursor(&order, value, row.id().to_owned())
                })
            } else {
                None
            };
            Ok(Listing::Cursor { data, next_cursor, page_size: *size })
        }
    }
}

fn push_order(q: &mut Sql, order: &Order, dir: &'static str) {
    q.push(" ORDER BY ").push(order.key.expr).push(dir).push(", id").push(dir);
}

/// The default order of every list: creation time, then ID.
pub(crate) const CREATED: SortKey = SortKey { name: "createdAt", expr: "created_at", kind: KeyKind::Int };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_mismatch() {
        let order = Order { key: CREATED, desc: false };
        let c = encode_cursor(&order, CursorValue::Int(42), "team-1".into());
        let d = decode_cursor(&c, &order).unwrap();
        assert_eq!(d.v, CursorValue::Int(42));
        assert_eq!(d.i, "team-1");
        let desc = Order { key: CREATED, desc: true };
        assert!(matches!(decode_cursor(&c, &desc), Err(StoreError::Invalid { field: "cursor", .. })));
        assert!(decode_cursor("!!", &order).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(b"{}"), &order).is_err());
    }
}
