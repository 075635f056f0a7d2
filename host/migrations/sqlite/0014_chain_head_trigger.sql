-- The chain head moves with each record inserted, inside the insert's own
-- statement, so a commit is one statement: one hand-over to the driver's
-- worker thread instead of four (BEGIN, INSERT, UPDATE, COMMIT). Rows skipped
-- as already stored (draining a spool) do not fire it; the head only moves
-- forward.
CREATE TRIGGER audit_records_move_chain_head AFTER INSERT ON audit_records
BEGIN
    UPDATE audit_chains SET head_seq = NEW.seq, head_hash = NEW.hash
    WHERE chain_id = NEW.chain_id AND head_seq < NEW.seq;
END;
