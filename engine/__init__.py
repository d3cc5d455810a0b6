"""Samflyt's generic workflow engine.

Runs any SpiffWorkflow-compatible BPMN (spiff extensions, DMN, call activities) with its state in a
database. Nothing in this package knows the processes it runs: they live in BPMN, forms and
connectors at the edges. Nothing here imports Flask, so the CLI, the scheduler and tests use it alike.
"""
