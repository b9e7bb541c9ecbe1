//! Checklists: every prerequisite item of the deploy ticked, with evidence.
