-- Loaded by busted before the specs (.busted: helper): keep the runtime's
-- per-connection info lines out of the TAP output; helpers.logcap raises the
-- level while it captures.
require("tunnel").config{ log_level = "warn" }
