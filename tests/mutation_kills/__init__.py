"""Tests that pin behaviours mutation testing found unpinned (issue 15); each states a behaviour."""
