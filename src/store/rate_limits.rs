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
        .to_owned();
    db.execute(&upsert).await?;
    current(db, bucket, window).await
}

/// The window's count so far.
pub async fn current<C: ConnectionTrait>(db: &C, bucket: &str, window: i64) -> Result<u32, DbErr> {
    let select = Query::select()
        .column(col("count"))
        .from(table())
        .and_where(Expr::col(col("bucket")).eq(bucket))
        .and_where(Expr::col(col("window_start")).eq(window))
        .to_owned();
    let Some(row) = db.query_one(&select).await? else {
        return Ok(0);
    };
    let count: i32 = row.try_get("", "count")?;
    Ok(u32::try_from(count).unwrap_or(0))
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
