//! The Docker Engine API as Stockade understands it: a closed route table and, later, typed views
//! of the request bodies the gateway inspects.
//!
//! Every request the gateway receives is first turned into a [`Route`]; whatever cannot be turned
//! into one (an unknown path, a method the route does not take, a path that is not canonical) is
//! refused before anything else looks at it. The table is default deny: only the operations the
//! stock docker CLI, compose, buildx and the SDKs need are listed, and everything else (plugins,
//! swarm, libpod, distribution internals) is an error.
//!
//! ```
//! use stockade_engine_api::{Route, Operation};
//! let route = Route::parse(&http::Method::GET, "/v1.41/containers/json").unwrap();
//! assert_eq!(route.operation, Operation::ContainerList);
//! assert!(Route::parse(&http::Method::POST, "/swarm/init").is_err());
//! ```
#![forbid(unsafe_code)]

pub mod archive;
pub mod dockerfile;
pub mod json;
pub mod query;
pub mod request;
mod route;
pub mod schema;

pub use query::{Query, QueryError};
pub use request::{check_content_type, ArchiveFacts, BodyKind, Request, RequestError};
pub use route::{ApiVersion, Hijack, Operation, Route, RouteError};
