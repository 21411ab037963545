//! `check-config` through the real binary: shipped configs and the broken-config suite.
