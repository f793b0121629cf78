"""Who may answer and what was decided: decision checks, standing grants, the audit trail."""
