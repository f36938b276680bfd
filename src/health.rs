//! What the service is ready for: the state every part reports into and
//! `/readyz` reads. Shared by the sources, the engine thread and the sinks,
//! so it sits below all of them.

/// What the service is ready for, reported by `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    /// The engine has read the log up to where it stood at start.
    pub recovered: bool,
    /// Parts that are down, with why.
    pub degraded: Vec<(String, String)>,
}
