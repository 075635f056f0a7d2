-- Indexes for the questions people ask of the trail.
CREATE INDEX audit_records_tenant ON audit_records (tenant, recorded_at);
CREATE INDEX audit_records_decision ON audit_records (decision, recorded_at);
CREATE INDEX audit_records_session ON audit_records (session) WHERE session IS NOT NULL;
CREATE INDEX audit_records_call_id ON audit_records (call_id);
