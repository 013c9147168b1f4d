--- lua-braze's version, defined here only: `braze._VERSION`, the default
-- User-Agent, `braze-segments --version` and `braze-mock --version` read it
-- (the mock's rock installs this file as braze_mock.version), and
-- spec/install/version_spec.lua checks that the versioned rockspec, the C
-- core's `_VERSION`, the README and CHANGELOG.md say the same.
-- @module braze.version
return "0.1.0"
