//! Sorted-set reads. Members are ordered by score, then by member bytes,
//! as in Redis; the `zsets_by_score` index serves both orders of access.

use rusqlite::{OptionalExtension, params};

use crate::db::Db;
use crate::error::StoreError;
use crate::keyvalue::{KeyKind, ScoredMember};
use crate::read::{View, rank_range};

impl View<'_> {
    /// The score of `member` in sorted set `key`.
    pub fn zset_score(&self, db: Db, key: &[u8], member: &[u8]) -> Result<Option<f64>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(None);
        };
        Ok(self
            .conn()
            .prepare_cached("SELECT score FROM zsets WHERE key_id = ?1 AND member = ?2")?
            .query_row(params![meta.id, member], |r| r.get(0))
            .optional()?)
    }

    /// Members ranked `start..=stop` (negative ranks count from the end,
    /// as in `ZRANGE`), lowest score first. Cost grows with `start` (SQLite
    /// keeps no ranks), so stream a whole big key with [`View::zset_scan`]
    /// or [`View::zset_range_by_score`] instead.
    pub fn zset_range(
        &self,
        db: Db,
        key: &[u8],
        start: i64,
        stop: i64,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(Vec::new());
        };
        let Some((first, count)) = rank_range(start, stop, meta.len) else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn().prepare_cached(
            "SELECT member, score FROM zsets WHERE key_id = ?1 ORDER BY score, member LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(params![meta.id, count as i64, first as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Up to `limit` members with `min <= score <= max`, lowest first.
    pub fn zset_range_by_score(
        &self,
        db: Db,
        key: &[u8],
        min: f64,
        max: f64,
        limit: usize,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        let Some(meta) = self.lookup_kind(db, key, KeyKind::ZSet)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn().prepare_cached(
            "SELECT member, score FROM zsets WHERE key_id = ?1 AND score >= ?2 AND score <= ?3
             ORDER BY score, member LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![meta.id, min, max, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Up to `limit` members and scores of sorted set `key` in member byte
    /// order, starting after member `after` (`None`: from the first). Pass
    /// the last member returned to get the next page; a short page is the
    /// last.
    pub fn zset_scan(
        &self,
        db: Db,
        key: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ScoredMember>, StoreError> {
        self.page(
            self.lookup_kind(db, key, KeyKind::ZSet)?,
            "SELECT member, score FROM zsets WHERE key_id = ?1 AND member >= ?2 ORDER BY member LIMIT ?3",
            after,
            limit,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::error::StoreError;
    use crate::keyvalue::KeyValue;
    use crate::test_support::{b, db, store};

    #[test]
    fn ranges_order_by_score_then_member_bytes() {
        let (_dir, store) = store();
        let members = vec![
            (b("b"), 2.0),
            (b("a"), 2.0),
            (b("z"), -1.0),
            (b"\xff".to_vec(), 2.0),
            (b("top"), f64::INFINITY),
        ];
        store
            .import_key(db(0), b("z"), KeyValue::ZSet(members), None, vec![])
            .wait()
            .unwrap();
        let all = store.read(|v| v.zset_range(db(0), b"z", 0, -1)).unwrap();
        let order: Vec<Vec<u8>> = all.into_iter().map(|(m, _)| m).collect();
        assert_eq!(
            order,
            vec![b("z"), b("a"), b("b"), b"\xff".to_vec(), b("top")]
        );
        assert_eq!(
            store.read(|v| v.zset_range(db(0), b"z", -2, -2)).unwrap(),
            vec![(b"\xff".to_vec(), 2.0)]
        );
        let by_score = store
            .read(|v| v.zset_range_by_score(db(0), b"z", 0.0, 2.0, 2))
            .unwrap();
        assert_eq!(by_score, vec![(b("a"), 2.0), (b("b"), 2.0)]);
        assert_eq!(
            store.read(|v| v.zset_score(db(0), b"z", b"top")).unwrap(),
            Some(f64::INFINITY)
        );
        assert_eq!(
            store.read(|v| v.zset_score(db(0), b"z", b"none")).unwrap(),
            None
        );
        let page = store
            .read(|v| v.zset_scan(db(0), b"z", Some(b"b"), 10))
            .unwrap();
        assert_eq!(
            page,
            vec![
                (b("top"), f64::INFINITY),
                (b("z"), -1.0),
                (b"\xff".to_vec(), 2.0)
            ]
        );
    }

    #[test]
    fn reading_another_type_is_wrongtype() {
        let (_dir, store) = store();
        store
            .import_key(db(0), b("s"), KeyValue::Set(vec![b("m")]), None, vec![])
            .wait()
            .unwrap();
        assert!(matches!(
            store.read(|v| v.zset_score(db(0), b"s", b"m")),
            Err(StoreError::WrongType)
        ));
        assert!(matches!(
            store.read(|v| v.hash_get(db(0), b"s", b"m")),
            Err(StoreError::WrongType)
        ));
        assert!(matches!(
            store.read(|v| v.string_get(db(0), b"s")),
            Err(StoreError::WrongType)
        ));
        assert_eq!(
            store
                .read(|v| v.zset_range(db(0), b"missing", 0, -1))
                .unwrap(),
            vec![]
        );
    }
}
