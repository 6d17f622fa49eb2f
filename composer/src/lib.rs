//! berth's compose engine.
//!
//! Will own the compose-spec loader (YAML, interpolation, merge, extends,
//! include, profiles, validation), the project model, the planner and the
//! engines (embedded runtime, Docker engine). Nothing is implemented yet: the
//! crate exists so the workspace has its final shape.
