//! `MeshHTTPRoute`: HTTP routing rules, attached to a MeshGateway's listeners or to services.

use super::{BackendRef, IntOrString, TargetRef, is_false};
use crate::enums::string_enum;

model! {
    pub struct MeshHttpRouteSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target_ref: Option<TargetRef>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub to: Vec<HttpRouteTo>,
    }

    pub struct HttpRouteTo {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target_ref: Option<TargetRef>,
        /// Gateway routes only: the listener hostnames this entry applies to.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub hostnames: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub rules: Vec<HttpRule>,
    }

    pub struct HttpRule {
        /// Any one match selects the rule; an empty list matches every request.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub matches: Vec<HttpMatch>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub default: Option<HttpRuleConf>,
    }

    /// All conditions of one match must hold.
    pub struct HttpMatch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<PathMatch>,
        #[serde(default, skip_serializing_if = "HttpMethod::is_unset")]
        pub method: HttpMethod,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub query_params: Vec<QueryParamMatch>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub headers: Vec<HeaderMatch>,
    }

    pub struct PathMatch {
        #[serde(rename = "type", default, skip_serializing_if = "PathMatchType::is_unset")]
        pub match_type: PathMatchType,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub value: String,
    }

    pub struct HeaderMatch {
        #[serde(rename = "type", default, skip_serializing_if = "HeaderMatchType::is_unset")]
        pub match_type: HeaderMatchType,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub value: Option<String>,
    }

    pub struct QueryParamMatch {
        #[serde(rename = "type", default, skip_serializing_if = "QueryMatchType::is_unset")]
        pub match_type: QueryMatchType,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub value: String,
    }

    pub struct HttpRuleConf {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub filters: Vec<HttpFilter>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub backend_refs: Vec<BackendRef>,
    }

    /// One filter; `type` names which of the other fields carries its configuration.
    pub struct HttpFilter {
        #[serde(rename = "type", default, skip_serializing_if = "FilterType::is_unset")]
        pub filter_type: FilterType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_header_modifier: Option<HeaderModifier>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub response_header_modifier: Option<HeaderModifier>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_redirect: Option<RequestRedirect>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url_rewrite: Option<UrlRewrite>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_mirror: Option<RequestMirror>,
    }

    pub struct HeaderModifier {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub add: Vec<HeaderValue>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub set: Vec<HeaderValue>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub remove: Vec<String>,
    }

    pub struct HeaderValue {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub value: String,
    }

    pub struct RequestRedirect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scheme: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hostname: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<PathModifier>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub port: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status_code: Option<u32>,
    }

    pub struct UrlRewrite {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hostname: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<PathModifier>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub host_to_backend_hostname: bool,
    }

    pub struct PathModifier {
        #[serde(rename = "type", default, skip_serializing_if = "PathModifierType::is_unset")]
        pub modifier_type: PathModifierType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub replace_full_path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub replace_prefix_match: Option<String>,
    }

    pub struct RequestMirror {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub backend_ref: Option<BackendRef>,
        /// Share of requests mirrored, 0-100 (a number or a decimal string).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub percentage: Option<IntOrString>,
    }
}

string_enum! {
    PathMatchType {
        Exact = "Exact",
        PathPrefix = "PathPrefix",
        RegularExpression = "RegularExpression",
    }
}

string_enum! {
    HeaderMatchType {
        Exact = "Exact",
        Present = "Present",
        RegularExpression = "RegularExpression",
        Absent = "Absent",
        Prefix = "Prefix",
    }
}

string_enum! {
    QueryMatchType {
        Exact = "Exact",
        RegularExpression = "RegularExpression",
    }
}

string_enum! {
    HttpMethod {
        Connect = "CONNECT",
        Delete = "DELETE",
        Get = "GET",
        Head = "HEAD",
        Options = "OPTIONS",
        Patch = "PATCH",
        Post = "POST",
        Put = "PUT",
        Trace = "TRACE",
    }
}

string_enum! {
    FilterType {
        RequestHeaderModifier = "RequestHeaderModifier",
        ResponseHeaderModifier = "ResponseHeaderModifier",
        RequestRedirect = "RequestRedirect",
        UrlRewrite = "URLRewrite",
        RequestMirror = "RequestMirror",
    }
}

string_enum! {
    PathModifierType {
        ReplaceFullPath = "ReplaceFullPath",
        ReplacePrefixMatch = "ReplacePrefixMatch",
    }
}
