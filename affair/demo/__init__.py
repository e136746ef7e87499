"""The demo: a whole station on one machine, with simulated nodes and an event builder."""
