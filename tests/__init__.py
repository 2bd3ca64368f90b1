"""Tests of the trm-core distribution."""
