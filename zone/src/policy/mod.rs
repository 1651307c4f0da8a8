//! Policies as a proxy sees them: which policies select it (top-level `targetRef`), and for
//! each policy type the configuration per outbound destination (`to[]`) and per caller
//! (`from[]`), merged as Kuma 2.x merges them. One pure function computes this; xDS
//! generation and the inspection API both use it, so what an operator inspects is what Envoy
//! gets. It holds no Envoy types and reads nothing but its inputs.

pub mod merge;
pub mod rules;
