//! The schemas Terraform sees: the provider's settings, one resource per kind, the zone, the
//! dataplane token and the data sources.

use std::collections::HashMap;

use crate::kinds::{FieldType, KINDS, Kind, ZONE_FIELDS};
use crate::tfplugin6::schema::{Attribute, Block};
use crate::tfplugin6::{Schema, StringKind};

pub const STRING: &str = "\"string\"";
pub const BOOL: &str = "\"bool\"";
pub const NUMBER: &str = "\"number\"";
pub const DYNAMIC: &str = "\"dynamic\"";
pub const STRING_MAP: &str = "[\"map\",\"string\"]";

#[derive(Clone, Copy)]
enum Mode {
    Required,
    Optional,
    Computed,
}

fn attr(name: &str, ty: &str, mode: Mode, sensitive: bool, description: &str) -> Attribute {
    Attribute {
        name: name.into(),
        r#type: ty.as_bytes().to_vec(),
        description: description.into(),
        required: matches!(mode, Mode::Required),
        optional: matches!(mode, Mode::Optional),
        computed: matches!(mode, Mode::Computed),
        sensitive,
        description_kind: StringKind::Markdown as i32,
        ..Default::default()
    }
}

fn schema(description: &str, attributes: Vec<Attribute>) -> Schema {
    Schema {
        version: 0,
        block: Some(Block {
            attributes,
            description: description.into(),
            description_kind: StringKind::Markdown as i32,
            ..Default::default()
        }),
    }
}

pub fn provider() -> Schema {
    schema(
        "Atoll's global control plane, through its REST API.",
        vec![
            attr(
                "address",
                STRING,
                Mode::Optional,
                false,
                "The API's address, `http://HOST:5681` or `https://HOST:5682` (default: `ATOLL_API_ADDRESS`, else `http://127.0.0.1:5681`).",
            ),
            attr(
                "token",
                STRING,
                Mode::Optional,
                true,
                "A user token, e.g. the admin token (default: `ATOLL_API_TOKEN`).",
            ),
            attr(
                "token_file",
                STRING,
                Mode::Optional,
                false,
                "A file holding the user token.",
            ),
            attr(
                "ca_cert",
                STRING,
                Mode::Optional,
                false,
                "The CA certificate (PEM text, or a file path) that signed the HTTPS API's certificate (default: `ATOLL_API_CA_CERT`).",
            ),
        ],
    )
}

fn field_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Dynamic => DYNAMIC,
        FieldType::String => STRING,
        FieldType::Bool => BOOL,
    }
}

pub fn resource(kind: &Kind) -> Schema {
    let mut attributes = vec![
        attr(
            "name",
            STRING,
            Mode::Required,
            false,
            "The resource's name; changing it replaces the resource.",
        ),
        attr(
            "labels",
            STRING_MAP,
            Mode::Optional,
            false,
            "Labels, as `labels:` in YAML.",
        ),
    ];
    if kind.in_mesh {
        attributes.push(attr(
            "mesh",
            STRING,
            Mode::Required,
            false,
            "The mesh; changing it replaces the resource.",
        ));
    }
    for field in kind.fields {
        attributes.push(attr(
            field.hcl,
            field_type(field.ty),
            Mode::Optional,
            field.sensitive,
            &format!("`{}` in YAML, with the same shape.", field.json),
        ));
    }
    schema(kind.description, attributes)
}

pub fn zone() -> Schema {
    let mut attributes = vec![
        attr(
            "name",
            STRING,
            Mode::Required,
            false,
            "The zone's name (a DNS label); changing it replaces the zone.",
        ),
        attr(
            "labels",
            STRING_MAP,
            Mode::Optional,
            false,
            "Labels, as in YAML.",
        ),
        attr(
            "renew_before_hours",
            NUMBER,
            Mode::Optional,
            false,
            "Re-issue the certificate when it expires within this many hours (default 720).",
        ),
        attr(
            "certificate",
            STRING,
            Mode::Computed,
            true,
            "The zone's KDS client certificate (PEM).",
        ),
        attr(
            "key",
            STRING,
            Mode::Computed,
            true,
            "The certificate's private key (PEM).",
        ),
        attr(
            "ca_certificate",
            STRING,
            Mode::Computed,
            true,
            "The global's KDS CA (PEM): the zone verifies the global with it.",
        ),
        attr(
            "serial",
            STRING,
            Mode::Computed,
            false,
            "The certificate's serial (hex), as revocation lists name it.",
        ),
        attr(
            "expires_at",
            STRING,
            Mode::Computed,
            false,
            "When the certificate expires (RFC 3339).",
        ),
    ];
    for field in ZONE_FIELDS {
        attributes.push(attr(
            field.hcl,
            field_type(field.ty),
            Mode::Optional,
            false,
            "`enabled` in YAML.",
        ));
    }
    schema(
        "A Zone, and the KDS client certificate its control plane connects to the global with.",
        attributes,
    )
}

pub fn dataplane_token() -> Schema {
    schema(
        "A data plane token issued by the global (`POST /tokens/dataplane`). Any change issues a new one; destroying it forgets it.",
        vec![
            attr("mesh", STRING, Mode::Required, false, "The mesh."),
            attr(
                "name",
                STRING,
                Mode::Optional,
                false,
                "Bind the token to this data plane name.",
            ),
            attr(
                "type",
                STRING,
                Mode::Optional,
                false,
                "`dataplane` (default), `gateway`, `ingress` or `egress`.",
            ),
            attr(
                "tags",
                DYNAMIC,
                Mode::Optional,
                false,
                "Tags the data plane must carry, `{ \"kuma.io/service\" = [\"web\"] }`.",
            ),
            attr(
                "valid_for",
                STRING,
                Mode::Optional,
                false,
                "How long the token is valid, e.g. `720h`.",
            ),
            attr("token", STRING, Mode::Computed, true, "The token."),
        ],
    )
}

pub fn zones_data() -> Schema {
    let zone = "[\"object\",{\"name\":\"string\",\"enabled\":\"bool\",\"online\":\"bool\"}]";
    schema(
        "Every Zone with whether it is enabled and connected now.",
        vec![attr(
            "zones",
            &format!("[\"list\",{zone}]"),
            Mode::Computed,
            false,
            "The zones.",
        )],
    )
}

pub fn mesh_data() -> Schema {
    let mut attributes = vec![
        attr("name", STRING, Mode::Required, false, "The mesh's name."),
        attr("labels", STRING_MAP, Mode::Computed, false, "Labels."),
    ];
    if let Some(mesh) = KINDS.iter().find(|k| k.api_type == "Mesh") {
        for field in mesh.fields {
            attributes.push(attr(
                field.hcl,
                DYNAMIC,
                Mode::Computed,
                false,
                &format!("`{}` in YAML.", field.json),
            ));
        }
    }
    schema("A Mesh, read.", attributes)
}

pub fn resources() -> HashMap<String, Schema> {
    let mut map: HashMap<String, Schema> = KINDS
        .iter()
        .map(|k| (k.type_name.to_string(), resource(k)))
        .collect();
    map.insert("atoll_zone".into(), zone());
    map.insert("atoll_dataplane_token".into(), dataplane_token());
    map
}

pub fn data_sources() -> HashMap<String, Schema> {
    HashMap::from([
        ("atoll_zones".to_string(), zones_data()),
        ("atoll_mesh".to_string(), mesh_data()),
    ])
}

/// The attributes of `type_name` whose type is `dynamic` (encoded with their type).
pub fn dynamic_attributes(type_name: &str) -> Vec<&'static str> {
    if let Some(kind) = crate::kinds::find(type_name) {
        return kind
            .fields
            .iter()
            .filter(|f| f.ty == FieldType::Dynamic)
            .map(|f| f.hcl)
            .collect();
    }
    match type_name {
        "atoll_dataplane_token" => vec!["tags"],
        "atoll_mesh" => KINDS
            .iter()
            .find(|k| k.api_type == "Mesh")
            .map(|k| k.fields.iter().map(|f| f.hcl).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}
