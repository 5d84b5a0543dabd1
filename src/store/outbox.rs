//! The mail outbox. A message is inserted in the same transaction as the change that causes
//! it, then claimed and delivered by a worker.
//!
//! Claiming is a compare-and-set `UPDATE ... WHERE claimed_until IS NULL OR claimed_until < now`:
//! of several instances reaching for one row, exactly one sees `rows_affected == 1`. It works
//! alike on SQLite and PostgreSQL; a claim lapses after its lease, so a crashed instance's
//! messages are picked up again (delivery is at least once).

use chrono::{DateTime, Utc};
use entity::outbox_message;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, UpdateMany,
};

pub type MessageId = i64;

/// What a finished message's recipient and bodies are replaced with. Bodies carry live
/// confirmation and reset links, and the recipient names a person (perhaps one who has since
/// removed that address or deleted the account); once a message is delivered (or abandoned)
/// the row keeps only its metadata, so the table never holds usable secrets or personal data
/// longer than the mail needs.
pub const SCRUBBED: &str = "";

/// What the outbox stores for one message.
pub struct NewMessage<'a> {
    pub kind: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: &'a str,
}

pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    message: NewMessage<'_>,
    now: DateTime<Utc>,
) -> Result<MessageId, DbErr> {
    let row = outbox_message::ActiveModel {
        kind: Set(message.kind.to_owned()),
        recipient: Set(message.recipient.to_owned()),
        subject: Set(message.subject.to_owned()),
        text_body: Set(message.text_body.to_owned()),
        html_body: Set(message.html_body.to_owned()),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_until: Set(None),
        sent_at: Set(None),
        failed_at: Set(None),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(row.id)
}

fn pending() -> Condition {
    Condition::all()
        .add(outbox_message::Column::SentAt.is_null())
        .add(outbox_message::Column::FailedAt.is_null())
}

fn unclaimed(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(outbox_message::Column::ClaimedUntil.is_null())
        .add(outbox_message::Column::ClaimedUntil.lt(now))
}

/// Up to `limit` messages due now and not claimed by anyone, oldest first.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<MessageId>, DbErr> {
    outbox_message::Entity::find()
        .filter(pending())
        .filter(outbox_message::Column::NextAttemptAt.lte(now))
        .filter(unclaimed(now))
        .order_by_asc(outbox_message::Column::NextAttemptAt)
        .order_by_asc(outbox_message::Column::Id)
        .limit(limit)
        .select_only()
        .column(outbox_message::Column::Id)
        .into_tuple()
        .all(db)
        .await
}

/// How many messages wait to be delivered, and when the oldest of them was queued.
pub async fn backlog<C: ConnectionTrait>(db: &C) -> Result<(i64, Option<DateTime<Utc>>), DbErr> {
    let row: Option<(i64, Option<DateTime<Utc>>)> = outbox_message::Entity::find()
        .filter(pending())
        .select_only()
        .column_as(outbox_message::Column::Id.count(), "pending")
        .column_as(outbox_message::Column::CreatedAt.min(), "oldest")
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.unwrap_or((0, None)))
}

/// When the next pending message falls due (claimed or not), if any.
pub async fn next_due_at<C: ConnectionTrait>(db: &C) -> Result<Option<DateTime<Utc>>, DbErr> {
    let next: Option<Option<DateTime<Utc>>> = outbox_message::Entity::find()
        .filter(pending())
        .select_only()
        .column_as(outbox_message::Column::NextAttemptAt.min(), "next")
        .into_tuple()
        .one(db)
        .await?;
    Ok(next.flatten())
}

/// Claims message `id` until `until`; `None` when another worker got it first or it is done.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    id: MessageId,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<outbox_message::Model>, DbErr> {
    let claimed = outbox_message::Entity::update_many()
        .col_expr(outbox_message::Column::ClaimedUntil, Expr::value(until))
        .filter(outbox_message::Column::Id.eq(id))
        .filter(pending())
        .filter(unclaimed(now))
        .exec(db)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(None);
    }
    outbox_message::Entity::find_by_id(id).one(db).await
}

/// An update of message `id` that records the attempt count and releases the claim.
fn release(id: MessageId, attempts: i32) -> UpdateMany<outbox_message::Entity> {
    outbox_message::Entity::update_many()
        .col_expr(outbox_message::Column::Attempts, Expr::value(attempts))
        .col_expr(
            outbox_message::Column::ClaimedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(outbox_message::Column::Id.eq(id))
}

/// Also empties the recipient and the bodies (see `SCRUBBED`).
fn scrub(update: UpdateMany<outbox_message::Entity>) -> UpdateMany<outbox_message::Entity> {
    update
        .col_expr(outbox_message::Column::Recipient, Expr::value(SCRUBBED))
        .col_expr(outbox_message::Column::TextBody, Expr::value(SCRUBBED))
        .col_expr(outbox_message::Column::HtmlBody, Expr::value(SCRUBBED))
}

/// Records delivery and scrubs the recipient and bodies.
pub async fn mark_sent<C: ConnectionTrait>(
    db: &C,
    id: MessageId,
    attempts: i32,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    scrub(release(id, attempts))
        .col_expr(outbox_message::Column::SentAt, Expr::value(now))
        .exec(db)
        .await
        .map(|_| ())
}

/// Records a failed attempt and when to try again.
pub async fn reschedule<C: ConnectionTrait>(
    db: &C,
    id: MessageId,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), DbErr> {
    release(id, attempts)
        .col_expr(
            outbox_message::Column::NextAttemptAt,
            Expr::value(next_attempt_at),
        )
        .col_expr(
            outbox_message::Column::LastError,
            Expr::value(error.to_owned()),
        )
        .exec(db)
        .await
        .map(|_| ())
}

/// Stops retrying a message, keeping the reason and scrubbing the recipient and bodies.
pub async fn give_up<C: ConnectionTrait>(
    db: &C,
    id: MessageId,
    attempts: i32,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<(), DbErr> {
    scrub(release(id, attempts))
        .col_expr(outbox_message::Column::FailedAt, Expr::value(now))
        .col_expr(
            outbox_message::Column::LastError,
            Expr::value(reason.to_owned()),
        )
        .exec(db)
        .await
        .map(|_| ())
}

/// Deletes every message to these addresses, sent or not (a deleted account's mail).
pub async fn delete_to<C: ConnectionTrait>(db: &C, recipients: &[String]) -> Result<(), DbErr> {
    outbox_message::Entity::delete_many()
        .filter(outbox_message::Column::Recipient.is_in(recipients.iter().cloned()))
        .exec(db)
        .await
        .map(|_| ())
}

/// Deletes one message (a delivered goodbye, which must not outlive its account).
pub async fn delete<C: ConnectionTrait>(db: &C, id: MessageId) -> Result<(), DbErr> {
    outbox_message::Entity::delete_by_id(id)
        .exec(db)
        .await
        .map(|_| ())
}
