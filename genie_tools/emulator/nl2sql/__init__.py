"""The emulator's NL→SQL planner: question → intent → Databricks SQL, per space declaration."""
