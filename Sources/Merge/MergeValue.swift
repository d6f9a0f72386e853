// MergeValue: a configuration value (number, string, bool, list, map) decoded from YAML or
// JSON by the caller, so the Merge target validates configs without depending on a parser.
// It is ConfigTree's ConfigValue, the same tree the daemons' configs are read into.

@_exported import ConfigTree

public typealias MergeValue = ConfigValue
