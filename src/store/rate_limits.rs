//! Rate-limit counters (`rate_limits.store = "database"`): one row per bucket and window.
//! Not a domain model, so plain statements rather than an entity.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};

fn table() -> Alias {
    Alias::new("rate_limit_counters")
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Adds one to the window's count and returns it. One upsert, so concurrent hits from
/// several instances never lose a count.
pub async fn increment<C: ConnectionTrait>(
    db: &C,
    bucket: &str,
    window: i64,
) -> Result<u32, DbErr> {
    let upsert = Query::insert()
        .into_table(table())
        .columns([col("bucket"), col("window_start"), col("count")])
        .values_panic([bucket.into(), window.into(), 1.into()])
        .on_conflict(
            OnConflict::columns([col("bucket"), col("window_start")])
                .value(col("count"), Expr::col((table(), col("count"))).add(1))
                .to_owned(),
        )
        // RETURNING (PostgreSQL, SQLite >= 3.35): the count this very hit produced, so of
        // concurrent hits exactly `amount` see a count within it.
        .returning_col(col("count"))
        .to_owned();
    let row = db
        .query_one(&upsert)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("rate limit counter after upsert".into()))?;
    let count: i32 = row.try_get("", "count")?;
    Ok(u32::try_from(count).unwrap_or(0))
}

/// Takes one back from the window's count (a hit that, after all, should not have counted).
pub async fn decrement<C: ConnectionTrait>(db: &C, bucket: &str, window: i64) -> Result<(), DbErr> {
    let update = Query::update()
        .table(table())
        .value(col("count"), Expr::col(col("count")).sub(1))
        .and_where(Expr::col(col("bucket")).eq(bucket))
        .and_where(Expr::col(col("window_start")).eq(window))
        .and_where(Expr::col(col("count")).gt(0))
        .to_owned();
    db.execute(&update).await.map(|_| ())
}

/// Forgets every window of a bucket.
pub async fn clear<C: ConnectionTrait>(db: &C, bucket: &str) -> Result<(), DbErr> {
    let delete = Query::delete()
        .from_table(table())
        .and_where(Expr::col(col("bucket")).eq(bucket))
        .to_owned();
    db.execute(&delete).await.map(|_| ())
}

/// Drops windows that started before `before` (Unix seconds).
pub async fn sweep<C: ConnectionTrait>(db: &C, before: i64) -> Result<(), DbErr> {
    let delete = Query::delete()
        .from_table(table())
        .and_where(Expr::col(col("window_start")).lt(before))
        .to_owned();
    db.execute(&delete).await.map(|_| ())
}
