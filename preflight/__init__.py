"""What is settled before any work starts: process settings made before torch loads, and
input refused while refusing is still cheap (one `error:` line, exit status 2, no worker
started, no file written).

One job per module: `process_setup` (settings before torch), `refusal` (the refusal and its one
bounded line), `arguments` (command-line flag types), `overrides` (`KEY=VALUE` config settings
for `--set` and `--grid`), `yaml_loader` (config files), `typed` (loaded values checked against
the schema's types), `structure` (the size and depth of loaded data), `memory_estimate` (what a
run or an agent would allocate) and `outputs` (the places results will be written); `reference`
generates the page that documents what the loader checks (docs/configuration.md).
"""
