//! check-config and explain through the real binary.
