//! The rules of the wire format's fields as OpenAPI schemas, built from the
//! same constants [`super::decode`] checks, for the event types' derived
//! schemas (`#[schema(value_type = ...)]`) and the read APIs' path
//! parameters.

use std::borrow::Cow;

use utoipa::openapi::schema::{
    ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::{MAX_EVENT_ID_LEN, MAX_ID_LEN, MAX_TS, MAX_UTM_LEN};

/// Segments of `[A-Za-z0-9_:-]` joined by single dots: no empty part
/// between dots, none at either end (see `check_id`).
pub const ID_PATTERN: &str = "^[A-Za-z0-9_:-]+(\\.[A-Za-z0-9_:-]+)*$";

fn id_schema(max: usize, description: &str, example: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(ID_PATTERN))
        .description(Some(description))
        .examples([example])
        .into()
}

/// An identifier (`webinar_id`, `viewer_id`, `client_id`, ...).
pub struct Identifier;

impl PartialSchema for Identifier {
    fn schema() -> RefOr<Schema> {
        id_schema(
            MAX_ID_LEN,
            "1-128 characters of [A-Za-z0-9._:-], with no '.' at either end and no '..'.",
            "w-17",
        )
        .into()
    }
}

impl ToSchema for Identifier {}

/// An event's optional idempotency `id`.
pub struct EventId;

impl PartialSchema for EventId {
    fn schema() -> RefOr<Schema> {
        id_schema(
            MAX_EVENT_ID_LEN,
            "Makes redelivery idempotent: an event whose id was applied before (within its \
             webinar or client) is skipped. 1-64 characters of [A-Za-z0-9._:-], with no '.' \
             at either end and no '..'.",
            "ev-000123",
        )
        .into()
    }
}

impl ToSchema for EventId {}

/// An event time.
pub struct Timestamp;

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0))
            .maximum(Some(MAX_TS))
            .description(Some(
                "Milliseconds since the Unix epoch, up to the end of year 9999.",
            ))
            .examples([1_764_000_000_000i64])
            .into()
    }
}

impl ToSchema for Timestamp {}

/// A UTM value or `cid`: free text, trimmed; empty means absent.
pub struct UtmText;

impl PartialSchema for UtmText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_UTM_LEN))
            .description(Some(
                "Trimmed; at most 256 characters after trimming; empty means absent.",
            ))
            .into()
    }
}

impl ToSchema for UtmText {}

/// A client address, masked on arrival.
pub struct IpAddress;

impl PartialSchema for IpAddress {
    fn schema() -> RefOr<Schema> {
        let format = |f| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(f)))
        };
        OneOfBuilder::new()
            .item(format(KnownFormat::Ipv4))
            .item(format(KnownFormat::Ipv6))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^\\s*$")),
            )
            .description(Some(
                "An IPv4 or IPv6 address (blank means absent). Masked before anything keeps \
                 it: IPv4 to its /24, IPv6 to its /48.",
            ))
            .examples(["203.0.113.7"])
            .into()
    }
}

impl ToSchema for IpAddress {}

/// A page view's `query`: the raw query string, or an object of its
/// parameters.
pub struct PageQuery;

impl PartialSchema for PageQuery {
    fn schema() -> RefOr<Schema> {
        let scalar = ObjectBuilder::new().schema_type(SchemaType::Array(vec![
            Type::String,
            Type::Number,
            Type::Boolean,
            Type::Null,
        ]));
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .additional_properties(Some(scalar)),
            )
            .description(Some(
                "The page URL's query string (`utm_source=newsletter&utm_medium=email`), or an \
                 object of its parameters (null ones left out, numbers and booleans as their \
                 text); its utm_* parameters attribute the page view.",
            ))
            .into()
    }
}

impl ToSchema for PageQuery {}

/// The names of the component schemas above, with their schemas, for the
/// API description.
pub fn components() -> Vec<(Cow<'static, str>, RefOr<Schema>)> {
    vec![
        (Identifier::name(), Identifier::schema()),
        (EventId::name(), EventId::schema()),
        (Timestamp::name(), Timestamp::schema()),
        (UtmText::name(), UtmText::schema()),
        (IpAddress::name(), IpAddress::schema()),
        (PageQuery::name(), PageQuery::schema()),
    ]
}
