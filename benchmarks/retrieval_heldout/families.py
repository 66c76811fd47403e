"""The held-out evaluation set's task families, written apart from ``retrieval_quality``.

Written without reading the tuning corpus's texts (only its data format), in other domains
(firmware, games, numerical code, genomics, back-office batch jobs, language tooling,
networking, localisation, media, maps, robots, smart contracts, Windows administration,
backups, desktop apps) and other writing styles: ticket ids, commit subjects, lower-case chat,
non-native English. Each family has

- ``tasks``: how the agent that did the work titled the episode (``{s}`` is the subject);
- ``subjects``: what the episodes were about, one per episode;
- ``steps``: (tool, action) pairs; ``errors``: (index of the failing step, message) pairs,
  one drawn per failing episode;
- ``queries``: (text, context, intent) triples asked later, in other words. ``context`` is
  what the asking agent knew: ``full`` (domain and language), ``lang`` (only the language),
  ``domain`` (only the domain) or ``none``. ``intent`` is ``any`` (how is this done) or
  ``fail`` (what went wrong before: the episodes that met an error are the answer).

``CROSS`` holds queries about several families at once, with a grade per family.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CROSS", "FAMILIES", "Family"]

Query = tuple[str, str, str]  # text, context kind, intent


@dataclass(frozen=True)
class Family:
    key: str
    domain: str
    language: str
    framework: str | None
    task_type: str
    tasks: tuple[str, ...]
    subjects: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]
    errors: tuple[tuple[int, str], ...]
    queries: tuple[Query, ...]


F = Family
FAMILIES: tuple[Family, ...] = (
    F(
        "fw-flash",
        "embedded",
        "c",
        "zephyr",
        "other",
        (
            "FW-{n}: flash {s} board over SWD",
            "flash new image to {s} devkit",
            "program the {s} board, bootloader + app",
        ),
        ("nrf52 sensor", "stm32 motor", "gateway", "rp2040 badge", "lora node"),
        (
            ("west", "west build -b {s} app"),
            ("openocd", "openocd -f interface/cmsis-dap.cfg"),
            ("west", "west flash --runner openocd"),
            ("minicom", "check boot banner on uart"),
        ),
        (
            (1, "Error: unable to find a matching CMSIS-DAP device"),
            (2, "flash write failed at 0x08004000: target not halted"),
        ),
        (
            ("how do i get my compiled firmware onto the chip with the debug probe", "full", "any"),
            ("burning a build onto a microcontroller", "lang", "any"),
            ("probe not detected when programming, what did we do last time", "none", "fail"),
            ("the write to flash kept failing, what was the cause", "domain", "fail"),
        ),
    ),
    F(
        "i2c-sensor",
        "embedded",
        "rust",
        "embedded-hal",
        "code_generation",
        (
            "feat(drivers): {s} over i2c",
            "bring up {s} on the i2c bus",
            "driver for {s} sensor (i2c, blocking)",
        ),
        ("bme280", "imu", "ambient light", "fuel gauge", "eeprom"),
        (
            ("cargo", "cargo build --target thumbv7em-none-eabihf"),
            ("probe-rs", "probe-rs run --chip STM32F411"),
            ("logic-analyzer", "capture SCL/SDA while reading WHO_AM_I of {s}"),
            ("cargo", "cargo test -p drivers"),
        ),
        ((2, "I2C NACK on address 0x76"), (1, "Timeout while waiting for core to halt")),
        (
            ("talk to a temperature chip from a no_std crate", "lang", "any"),
            ("write a peripheral driver for a two-wire bus device", "domain", "any"),
            ("device does not acknowledge its address, seen before?", "none", "fail"),
            ("reading register of a humidity part over the serial bus", "full", "any"),
        ),
    ),
    F(
        "low-power",
        "embedded",
        "c",
        "freertos",
        "debugging",
        (
            "{s}: idle current too high",
            "cut sleep current on {s}",
            "battery drain on {s}, investigate and fix",
        ),
        ("lora node", "wearable", "door sensor", "asset tracker"),
        (
            ("ppk2", "measure idle current of {s} with power profiler"),
            ("editor", "enable configUSE_TICKLESS_IDLE"),
            ("editor", "gate clocks of unused peripherals"),
            ("ppk2", "measure again over 10 minutes"),
        ),
        ((3, "current stuck at 4.2 mA after sleep entry"), (1, "watchdog reset during STOP2 mode")),
        (
            ("the battery dies in two days, make the device sleep properly", "full", "any"),
            ("microamp budget for an rtos device between wakeups", "lang", "any"),
            ("it kept resetting when entering deep sleep last time, why", "domain", "fail"),
            ("power consumption optimisation", "none", "any"),
        ),
    ),
    F(
        "unity-pool",
        "gamedev",
        "csharp",
        "unity",
        "refactoring",
        (
            "perf: pool {s} instead of Instantiate/Destroy",
            "object pooling for {s}",
            "GC spikes when spawning {s} -> use pool",
        ),
        ("bullets", "enemies", "particles", "damage numbers", "coins"),
        (
            ("unity-profiler", "capture frame with GC.Alloc for {s}"),
            ("editor", "write ObjectPool<T> with Get/Release"),
            ("editor", "replace Instantiate calls with pool.Get"),
            ("unity-profiler", "verify 0 B GC alloc per frame"),
        ),
        (
            (3, "NullReferenceException: pooled object was destroyed"),
            (2, "MissingReferenceException: The object of type 'GameObject' has been destroyed"),
        ),
        (
            (
                "frame hitches from garbage collection when lots of projectiles appear",
                "full",
                "any",
            ),
            ("reuse spawned things rather than creating new ones every time", "lang", "any"),
            (
                "our recycling of game objects crashed with a destroyed object, what happened",
                "none",
                "fail",
            ),
            ("stutter while shooting", "domain", "any"),
        ),
    ),
    F(
        "godot-save",
        "gamedev",
        "gdscript",
        "godot",
        "code_generation",
        (
            "save/load for {s}",
            "persist {s} between sessions",
            "savegame: write {s} to user:// as json",
        ),
        ("inventory", "player stats", "quest log", "world map", "settings"),
        (
            ("editor", "serialize {s} to Dictionary"),
            ("godot", 'FileAccess.open("user://save.json", WRITE)'),
            ("godot", "load and restore {s} on scene ready"),
            ("godot", "run scene and reload twice"),
        ),
        (
            (2, "Invalid get index 'inventory' (on base: 'Nil')"),
            (1, "Error: FileAccess.open failed: ERR_FILE_CANT_OPEN"),
        ),
        (
            ("keep the player's progress when they quit and come back", "full", "any"),
            ("store game state on disk as a json file", "lang", "any"),
            ("loading the saved game gave a Nil error, what was wrong", "domain", "fail"),
            ("progress persistence", "none", "any"),
        ),
    ),
    F(
        "shader-shadow",
        "gamedev",
        "hlsl",
        "unreal",
        "debugging",
        (
            "shadow flicker on {s}",
            "fix shadow acne / flickering on {s}",
            "BUG-{n} shadows shimmer on {s} when camera moves",
        ),
        ("terrain", "foliage", "characters", "water", "interiors"),
        (
            ("renderdoc", "capture frame of {s}"),
            ("editor", "adjust depth bias and slope scale bias"),
            ("editor", "stabilise cascade splits, snap to texel grid"),
            ("unreal", "recompile shaders"),
        ),
        (
            (3, "error X3004: undeclared identifier 'ShadowBias'"),
            (0, "RenderDoc: capture failed, D3D12 device removed"),
        ),
        (
            ("dark stripes dancing on the ground when the view moves", "full", "any"),
            ("cascaded shadow maps look unstable", "domain", "any"),
            ("shader did not compile after the bias change, remind me", "lang", "fail"),
            ("graphics artefact investigation", "none", "any"),
        ),
    ),
    F(
        "julia-ode",
        "scientific",
        "julia",
        "DifferentialEquations.jl",
        "code_generation",
        (
            "solve stiff ode for {s} model",
            "integrate {s} system (stiff) with Rodas5",
            "{s}: time integration, implicit solver",
        ),
        ("combustion", "chemical kinetics", "cardiac cell", "predator prey", "circuit"),
        (
            ("julia", "define ODEProblem for {s}"),
            ("julia", "solve(prob, Rodas5(); abstol=1e-8)"),
            ("julia", "plot solution and compare with reference"),
            ("julia", "@btime solve"),
        ),
        (
            (1, "Warning: dt <= dtmin. Aborting. Solution may be unstable"),
            (1, "MethodError: no method matching zero(::Type{Any})"),
        ),
        (
            ("numerically integrating a rigid system of equations over time", "lang", "any"),
            ("the solver gave up with a too small step size, what did we try", "none", "fail"),
            ("simulate reaction rates evolving over time", "domain", "any"),
            ("implicit time stepping for a kinetics model", "full", "any"),
        ),
    ),
    F(
        "fortran-mpi",
        "scientific",
        "fortran",
        "mpi",
        "code_generation",
        (
            "MPI halo exchange for {s} stencil",
            "parallelise {s} solver with MPI",
            "domain decomposition of {s} grid",
        ),
        ("heat equation", "shallow water", "poisson", "wave", "advection"),
        (
            ("editor", "split {s} grid into 2d blocks with MPI_Cart_create"),
            ("editor", "exchange ghost cells with MPI_Sendrecv"),
            ("mpirun", "mpirun -np 64 ./{s}"),
            ("python", "compare against serial result"),
        ),
        (
            (2, "MPI_ERR_TRUNCATE: message truncated"),
            (2, "Segmentation fault in exchange_halo with 64 ranks"),
        ),
        (
            ("distribute a finite-difference grid over many cluster nodes", "domain", "any"),
            ("ghost cell communication between neighbouring processes", "lang", "any"),
            ("the multi-node run crashed during neighbour exchange, what was it", "none", "fail"),
            ("scale legacy numerical code to a cluster", "full", "any"),
        ),
    ),
    F(
        "hdf5-chunk",
        "scientific",
        "python",
        "h5py",
        "refactoring",
        (
            "chunk + compress {s} in hdf5",
            "store {s} arrays in hdf5 with gzip",
            "reorganise {s} dataset layout for faster reads",
        ),
        ("climate", "microscopy", "simulation snapshots", "spectra"),
        (
            ("python", "h5py.File create_dataset chunks=(1, 512, 512)"),
            ("python", "write {s} with compression='gzip'"),
            ("python", "benchmark slice reads"),
            ("h5ls", "h5ls -v output file"),
        ),
        (
            (0, "OSError: Unable to open file (unable to lock file, errno = 11)"),
            (2, "reads 10x slower than before: chunk shape mismatch"),
        ),
        (
            ("huge arrays on disk take forever to slice", "domain", "any"),
            ("file lock error opening the data file on the cluster share", "none", "fail"),
            ("compressed array storage for experiment output", "lang", "any"),
            ("layout of a hierarchical data file", "full", "any"),
        ),
    ),
    F(
        "deseq",
        "bioinformatics",
        "r",
        "DESeq2",
        "analysis",
        (
            "DE analysis {s} vs control",
            "differential expression, {s} samples",
            "run deseq2 on {s} counts",
        ),
        ("knockout", "treated liver", "tumour", "drought leaf", "day 7"),
        (
            ("r", "read featureCounts matrix for {s}"),
            ("r", "DESeqDataSetFromMatrix design ~ batch + condition"),
            ("r", "DESeq() and results(alpha=0.05)"),
            ("r", "volcano plot and export csv"),
        ),
        (
            (2, "every gene contains at least one zero, cannot compute log geometric means"),
            (1, "the design matrix is not full rank"),
        ),
        (
            ("which genes change between conditions in my rna experiment", "domain", "any"),
            ("find up and down regulated transcripts", "lang", "any"),
            (
                "size factor estimation failed because of zeros, what happened before",
                "none",
                "fail",
            ),
            ("model matrix not full rank in the expression analysis", "full", "fail"),
        ),
    ),
    F(
        "nf-align",
        "bioinformatics",
        "nextflow",
        "nextflow",
        "other",
        (
            "align {s} reads (bwa-mem) in nextflow",
            "nextflow pipeline: map {s} fastq to ref",
            "read mapping for {s}",
        ),
        ("exome", "wgs batch 3", "tumour normal", "bacterial isolates", "amplicon"),
        (
            ("nextflow", "nextflow run main.nf --reads '{s}/*_R{1,2}.fq.gz'"),
            ("bwa", "bwa mem -t 8 ref.fa"),
            ("samtools", "samtools sort and index"),
            ("multiqc", "multiqc results/"),
        ),
        (
            (1, "Process `BWA_MEM` terminated with an error exit status (137)"),
            (2, "[E::hts_open_format] fail to open file 'sample.bam'"),
        ),
        (
            ("map short sequencing reads to a reference genome", "domain", "any"),
            ("the mapping step got killed, out of memory probably? what did we do", "none", "fail"),
            ("workflow for aligning paired fastq files", "lang", "any"),
            ("set up alignment of sequencing data in a workflow manager", "full", "any"),
        ),
    ),
    F(
        "vcf-filter",
        "bioinformatics",
        "bash",
        "bcftools",
        "analysis",
        (
            "filter {s} variants by QUAL and DP",
            "vcf qc for {s}",
            "hard-filter snps from {s} callset",
        ),
        ("cohort", "trio", "wild isolates", "tumour"),
        (
            ("bcftools", "bcftools view -i 'QUAL>30 && DP>10' {s}.vcf.gz"),
            ("bcftools", "bcftools stats"),
            ("tabix", "tabix -p vcf filtered.vcf.gz"),
        ),
        (
            (0, "[E::bcf_hdr_parse_line] Could not parse the header line"),
            (2, "tbx_index_build failed: file not BGZF compressed"),
        ),
        (
            ("drop low quality mutation calls", "domain", "any"),
            ("the variant file header could not be parsed, happened before?", "none", "fail"),
            ("cleaning a callset with command line tools", "lang", "any"),
            ("keep only confident snps", "full", "any"),
        ),
    ),
    F(
        "bank-recon",
        "finance",
        "python",
        "pandas",
        "analysis",
        (
            "Please to reconcile {s} bank statement with ledger, totals is not same",
            "reconcile {s} account (bank vs ledger)",
            "month end recon {s}",
        ),
        ("EUR operating", "USD payroll", "petty cash", "card settlement", "GBP escrow"),
        (
            ("python", "load {s} statement csv and ledger export"),
            ("python", "match on amount and date within 3 days"),
            ("python", "list unmatched items"),
            ("excel", "send exception report"),
        ),
        (
            (1, "rows off by one cent after float sum"),
            (0, "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9"),
        ),
        (
            ("match the transactions from the bank to our books at month end", "domain", "any"),
            ("totals differ by pennies, what went wrong last time", "none", "fail"),
            ("pair payments across two spreadsheets", "lang", "any"),
            ("accounting matching script", "full", "any"),
        ),
    ),
    F(
        "cobol-batch",
        "finance",
        "cobol",
        None,
        "debugging",
        (
            "INC{n} {s} nightly batch abend",
            "fix abend in {s} batch",
            "{s} job failed overnight, rerun",
        ),
        ("PAYCALC", "GLPOST", "INTACCR", "STMTGEN"),
        (
            ("sdsf", "read job log of {s}"),
            ("editor", "fix PIC clause of amount field"),
            ("jcl", "resubmit {s} from step 3"),
            ("sdsf", "check return code"),
        ),
        ((0, "S0C7 data exception in {s}"), (2, "JCL ERROR: DD statement missing for SYSUT2")),
        (
            ("the mainframe overnight run crashed with bad packed decimal data", "none", "fail"),
            ("restart a legacy batch program after a data error", "domain", "any"),
            ("numeric field definition wrong in a copybook", "lang", "any"),
            ("rerun an overnight job on the host", "full", "any"),
        ),
    ),
    F(
        "vba-pivot",
        "finance",
        "vba",
        "excel",
        "code_generation",
        (
            "macro: monthly {s} pivot",
            "automate {s} report in excel",
            "vba to refresh {s} pivot + email",
        ),
        ("sales by region", "expenses", "headcount", "aging"),
        (
            ("excel", "record macro for {s} pivot"),
            ("editor", "PivotCaches.Create from named range"),
            ("editor", "add row and data fields"),
            ("outlook", "mail the workbook"),
        ),
        (
            (2, "Run-time error '1004': PivotTable field name is not valid"),
            (1, "Run-time error '13': Type mismatch"),
        ),
        (
            ("spreadsheet summary table built by a script every month", "domain", "any"),
            ("office macro language report automation", "lang", "any"),
            ("field name not valid error in the summary macro, seen it?", "none", "fail"),
            ("generate crosstab of spend each month", "full", "any"),
        ),
    ),
    F(
        "hs-parser",
        "tooling",
        "haskell",
        "megaparsec",
        "code_generation",
        ("parser for {s}", "megaparsec grammar: {s}", "parse {s} files into AST"),
        ("ini config", "query language", "build manifest", "unit expressions", "dsl"),
        (
            ("editor", "write lexeme and symbol helpers"),
            ("editor", "grammar for {s} with makeExprParser"),
            ("cabal", "cabal test"),
            ("cabal", "run property tests on round-trip"),
        ),
        (
            (2, "unexpected end of input, expecting '}'"),
            (2, "<<loop>>: many applied to a parser that accepts empty input"),
        ),
        (
            ("turn text of a small language into a syntax tree", "domain", "any"),
            ("parser combinators in a pure functional language", "lang", "any"),
            ("the grammar looped forever, what was the mistake", "none", "fail"),
            ("operator precedence parsing", "full", "any"),
        ),
    ),
    F(
        "eslint-rule",
        "tooling",
        "typescript",
        "eslint",
        "code_generation",
        ("lint rule: no {s}", "custom eslint rule banning {s}", "feat(lint): forbid {s} in src/"),
        ("default exports", "console.log", "relative parent imports", "enum", "any casts"),
        (
            ("editor", "write rule with AST selector for {s}"),
            ("vitest", "RuleTester valid and invalid cases"),
            ("eslint", "eslint src --rulesdir rules"),
        ),
        (
            (1, "TypeError: context.getScope is not a function"),
            (2, "Definition for rule 'local/no-{s}' was not found"),
        ),
        (
            ("ban a code pattern across the repo automatically", "domain", "any"),
            ("write a static check plugin for js", "lang", "any"),
            ("the plugin blew up because a context api was removed, remind me", "none", "fail"),
            ("AST visitor that reports violations", "full", "any"),
        ),
    ),
    F(
        "dune-migrate",
        "tooling",
        "ocaml",
        "dune",
        "refactoring",
        ("move {s} to dune", "build {s} with dune instead of make", "chore(build): dune for {s}"),
        ("core lib", "cli", "test suite", "ppx rewriters"),
        (
            ("editor", "write dune and dune-project for {s}"),
            ("opam", "opam install --deps-only ."),
            ("dune", "dune build @all"),
            ("dune", "dune runtest"),
        ),
        ((2, "Error: Unbound module Core"), (1, "opam: conflict between ocaml 4.14 and 5.1")),
        (
            ("replace makefiles with the modern ml build system", "lang", "any"),
            ("unbound module after switching build tool, seen before?", "none", "fail"),
            ("port the compile setup of a library", "domain", "any"),
            ("package manager dependency conflict on the compiler version", "full", "fail"),
        ),
    ),
    F(
        "tcp-proxy",
        "networking",
        "go",
        None,
        "debugging",
        (
            "{s} proxy leaks conns",
            "stuck connections in {s} tcp proxy",
            "fix(proxy): close idle {s} connections",
        ),
        ("redis", "postgres", "mqtt", "smtp", "ldap"),
        (
            ("ss", "ss -tanp | grep ESTAB count for {s}"),
            ("pprof", "goroutine profile"),
            ("editor", "set read/write deadlines, close both halves"),
            ("go", "go test -race ./proxy"),
        ),
        ((2, "accept: too many open files"), (3, "DATA RACE in proxy.copyLoop")),
        (
            ("sockets pile up in a forwarding service until it falls over", "domain", "any"),
            ("file descriptor exhaustion, what happened the previous time", "none", "fail"),
            ("goroutines never exit in the relay", "lang", "any"),
            ("half-closed connections in a layer 4 forwarder", "full", "any"),
        ),
    ),
    F(
        "dns-move",
        "networking",
        "bash",
        "bind",
        "other",
        (
            "migrate {s} zone to new nameservers",
            "{s}: move dns to new provider",
            "dns cutover for {s}",
        ),
        ("example.org", "internal corp", "mail domain", "staging"),
        (
            ("dig", "dig +trace {s}"),
            ("bind", "export zone and import at new provider"),
            ("registrar", "update NS records and DS"),
            ("dig", "verify from several resolvers"),
        ),
        (
            (3, "SERVFAIL: DNSSEC validation failure"),
            (1, "zone import rejected: CNAME and other data at apex"),
        ),
        (
            ("change where our domain names are hosted", "domain", "any"),
            (
                "after switching providers lookups failed with signature validation, why",
                "none",
                "fail",
            ),
            ("name server migration checklist", "lang", "any"),
            ("moving a zone with signed records", "full", "any"),
        ),
    ),
    F(
        "otp-supervise",
        "networking",
        "elixir",
        "otp",
        "refactoring",
        (
            "supervise {s} workers",
            "put {s} processes under a supervisor",
            "{s}: restart strategy + backpressure",
        ),
        ("websocket", "ingest", "payment webhook", "mqtt bridge"),
        (
            ("editor", "DynamicSupervisor for {s} workers"),
            ("editor", "GenServer with handle_call timeout"),
            ("iex", ":observer.start to watch mailboxes"),
            ("mix", "mix test"),
        ),
        (
            (1, "** (EXIT) time out in GenServer.call"),
            (2, "process mailbox grows unbounded: 2.1M messages"),
        ),
        (
            ("crash recovery for lightweight processes on the beam", "lang", "any"),
            ("call timed out in a server process, what did we do about it", "none", "fail"),
            ("let it crash design for connection handlers", "domain", "any"),
            ("worker restart tree", "full", "any"),
        ),
    ),
    F(
        "wireguard",
        "networking",
        "bash",
        "wireguard",
        "other",
        (
            "site-to-site wg tunnel to {s}",
            "vpn between office and {s}",
            "set up wireguard link {s}",
        ),
        ("berlin office", "aws vpc", "warehouse", "colo rack"),
        (
            ("wg", "wg genkey | tee privatekey | wg pubkey"),
            ("editor", "write wg0.conf with AllowedIPs for {s}"),
            ("systemctl", "systemctl enable --now wg-quick@wg0"),
            ("ping", "ping across tunnel"),
        ),
        (
            (3, "Handshake did not complete after 5 seconds, retrying"),
            (2, "RTNETLINK answers: Address already in use"),
        ),
        (
            ("encrypted link between two networks", "domain", "any"),
            ("peers never complete their handshake, how was it solved", "none", "fail"),
            ("connect branch LAN to the cloud privately", "lang", "any"),
            ("point to point vpn config", "full", "any"),
        ),
    ),
    F(
        "gettext-l10n",
        "localization",
        "python",
        "gettext",
        "documentation",
        (
            "translate {s} to de/ja",
            "i18n: extract {s} strings, update .po",
            "localise {s} ui texts",
        ),
        ("checkout", "onboarding", "error messages", "emails", "settings"),
        (
            ("xgettext", "xgettext -o messages.pot for {s}"),
            ("msgmerge", "msgmerge de.po messages.pot"),
            ("editor", "fill translations"),
            ("msgfmt", "msgfmt --check de.po"),
        ),
        (
            (3, "msgfmt: duplicate message definition"),
            (3, "format specifications in 'msgid' and 'msgstr' for argument 1 are not the same"),
        ),
        (
            ("make the interface available in german and japanese", "domain", "any"),
            (
                "the catalog compile step rejected a translation because placeholders differ",
                "none",
                "fail",
            ),
            ("update message catalogs after new strings", "lang", "any"),
            ("multilingual text resources", "full", "any"),
        ),
    ),
    F(
        "sphinx-api",
        "localization",
        "rst",
        "sphinx",
        "documentation",
        (
            "api ref pages for {s}",
            "document {s} with autodoc",
            "docs: generate reference for {s} module",
        ),
        ("client", "parsers", "plugins", "cli"),
        (
            ("sphinx", "sphinx-apidoc -o docs/api {s}"),
            ("editor", "write napoleon docstrings"),
            ("sphinx", "make html -W"),
        ),
        (
            (2, "WARNING: autodoc: failed to import module '{s}'"),
            (2, "WARNING: duplicate object description"),
        ),
        (
            ("generate reference documentation from docstrings", "domain", "any"),
            ("docs build could not import the package, what fixed it", "none", "fail"),
            ("html manual for a python library", "lang", "any"),
            ("automatic api pages", "full", "any"),
        ),
    ),
    F(
        "ffmpeg-hls",
        "media",
        "bash",
        "ffmpeg",
        "other",
        (
            "transcode {s} to hls ladder",
            "hls renditions for {s} (1080/720/480)",
            "package {s} videos for adaptive streaming",
        ),
        ("lectures", "trailers", "webinars", "game clips", "news"),
        (
            ("ffprobe", "ffprobe input of {s}"),
            ("ffmpeg", "ffmpeg -filter_complex split=3 scale, libx264, -f hls"),
            ("ffmpeg", "write master playlist"),
            ("player", "test in hls.js"),
        ),
        (
            (1, "Non-monotonous DTS in output stream 0:1"),
            (3, "playback stalls: segment durations differ from target"),
        ),
        (
            ("prepare videos so the player switches quality with bandwidth", "domain", "any"),
            (
                "timestamps went backwards during conversion last time, what did we do",
                "none",
                "fail",
            ),
            ("multi bitrate encode from the command line", "lang", "any"),
            ("adaptive streaming renditions", "full", "any"),
        ),
    ),
    F(
        "thumbs",
        "media",
        "go",
        "libvips",
        "code_generation",
        (
            "thumbnails for {s} (exif rotate)",
            "resize {s} photos, keep orientation",
            "generate {s} previews",
        ),
        ("user uploads", "product shots", "gallery", "avatars"),
        (
            ("editor", "vips thumbnail with autorotate for {s}"),
            ("go", "worker pool of 4 resizers"),
            ("go", "go test ./imaging"),
        ),
        (
            (0, "VipsJpeg: Premature end of JPEG file"),
            (2, "images come out sideways: orientation tag ignored"),
        ),
        (
            ("small preview images from camera pictures", "domain", "any"),
            ("pictures rotated wrong in previews, have we hit this", "none", "fail"),
            ("image downscaling service", "lang", "any"),
            ("truncated jpeg uploads crash the resizer", "full", "fail"),
        ),
    ),
    F(
        "loudness",
        "media",
        "python",
        "pyloudnorm",
        "other",
        (
            "normalise {s} to -16 LUFS",
            "loudness pass on {s}",
            "{s} audio levels all over the place, fix",
        ),
        ("podcast episodes", "audiobook chapters", "voice prompts", "music beds"),
        (
            ("python", "measure integrated loudness of {s}"),
            ("python", "apply gain to -16 LUFS"),
            ("ffmpeg", "true peak limiter -1 dBTP"),
            ("python", "re-measure"),
        ),
        (
            (2, "clipping detected: true peak +0.8 dBTP"),
            (0, "soundfile.LibsndfileError: Format not recognised"),
        ),
        (
            ("make all recordings equally loud", "domain", "any"),
            ("audio clipped after the gain step before, what went wrong", "none", "fail"),
            ("volume levelling script", "lang", "any"),
            ("broadcast loudness standard", "full", "any"),
        ),
    ),
    F(
        "reproject",
        "geospatial",
        "python",
        "rasterio",
        "analysis",
        (
            "reproject {s} to web mercator",
            "{s} rasters -> EPSG:3857",
            "warp {s} tiles to 3857 for the map",
        ),
        ("elevation", "landcover", "satellite", "flood depth", "ndvi"),
        (
            ("gdalinfo", "gdalinfo {s}.tif"),
            ("python", "rasterio.warp.reproject with bilinear"),
            ("gdal", "gdaladdo overviews"),
            ("qgis", "check alignment against basemap"),
        ),
        (
            (1, "ERROR 1: PROJ: proj_create: crs not found"),
            (3, "layer shifted by 200 m: wrong datum"),
        ),
        (
            ("convert grid imagery to the coordinate system used by online maps", "domain", "any"),
            ("coordinate reference lookup failed in the warp, what was it", "none", "fail"),
            ("change projection of geotiffs", "lang", "any"),
            ("resample rasters to another crs", "full", "any"),
        ),
    ),
    F(
        "postgis-near",
        "geospatial",
        "sql",
        "postgis",
        "code_generation",
        ("nearest {s} within 5 km", "query: {s} near a point", "find closest {s} (postgis, gist)"),
        ("stores", "charging stations", "hospitals", "bus stops"),
        (
            ("psql", "CREATE INDEX USING gist(geom) on {s}"),
            ("psql", "ST_DWithin(geom::geography, point, 5000) ORDER BY <->"),
            ("psql", "EXPLAIN ANALYZE"),
        ),
        (
            (1, "function st_dwithin(geometry, geography, integer) does not exist"),
            (2, "Seq Scan on {s}: index not used"),
        ),
        (
            ("what is close to a location, in the database", "domain", "any"),
            ("spatial function signature error mixing types, seen before", "none", "fail"),
            ("k nearest neighbour lookup on coordinates", "lang", "any"),
            ("radius search over points", "full", "any"),
        ),
    ),
    F(
        "ros-nav",
        "robotics",
        "cpp",
        "ros2",
        "debugging",
        ("{s}: nav2 gets stuck", "tune costmap for {s}", "{s} robot can't pass doors"),
        ("warehouse amr", "delivery bot", "lawn mower", "hospital cart"),
        (
            ("ros2", "ros2 launch nav2_bringup for {s}"),
            ("rviz", "inspect inflation layer"),
            ("editor", "lower inflation_radius, raise cost_scaling_factor"),
            ("ros2", "record bag of run"),
        ),
        (
            (0, "Lookup would require extrapolation into the future"),
            (3, "Failed to make progress: robot stuck near doorway"),
        ),
        (
            ("the mobile robot refuses to drive through narrow gaps", "domain", "any"),
            ("transform timing error when launching navigation, what was the fix", "none", "fail"),
            ("path planner obstacle padding", "lang", "any"),
            ("autonomous navigation parameter tuning", "full", "any"),
        ),
    ),
    F(
        "cam-calib",
        "robotics",
        "python",
        "opencv",
        "analysis",
        (
            "calibrate {s} camera",
            "intrinsics for {s} cam (checkerboard)",
            "{s} camera calibration redo",
        ),
        ("front stereo", "wrist", "overhead", "fisheye"),
        (
            ("python", "capture 30 checkerboard images from {s}"),
            ("python", "cv2.findChessboardCorners + cornerSubPix"),
            ("python", "cv2.calibrateCamera"),
            ("python", "undistort test image"),
        ),
        (
            (2, "reprojection error 3.7 px above 0.5 px limit"),
            (1, "findChessboardCorners returned False on 25 of 30 images"),
        ),
        (
            ("lens distortion parameters from pictures of a printed pattern", "domain", "any"),
            ("the reprojection error was huge last time, why", "none", "fail"),
            ("compute focal length and distortion with computer vision lib", "lang", "any"),
            ("pinhole model fitting", "full", "any"),
        ),
    ),
    F(
        "reentrancy",
        "blockchain",
        "solidity",
        "hardhat",
        "debugging",
        (
            "guard {s} withdraw vs reentrancy",
            "audit fix: reentrancy in {s}",
            "SEC-{n} {s} reentrancy",
        ),
        ("vault", "staking pool", "auction", "escrow"),
        (
            ("slither", "slither contracts/{s}.sol"),
            ("editor", "checks-effects-interactions, add nonReentrant"),
            ("hardhat", "npx hardhat test attack scenario"),
        ),
        (
            (0, "Reentrancy in {s}.withdraw(): External call before state write"),
            (2, "AssertionError: expected attacker balance 0, got 10 ETH"),
        ),
        (
            (
                "stop an attacker from calling back into the contract to drain funds",
                "domain",
                "any",
            ),
            ("the exploit test still drained money, what was missing", "none", "fail"),
            ("state update order in ethereum contracts", "lang", "any"),
            ("mutex modifier for external calls", "full", "any"),
        ),
    ),
    F(
        "gas-cut",
        "blockchain",
        "solidity",
        "foundry",
        "refactoring",
        ("cut gas in {s}", "gas golf {s}", "perf(contracts): cheaper {s}"),
        ("mint", "batch transfer", "claim", "vote"),
        (
            ("forge", "forge snapshot for {s}"),
            ("editor", "pack storage slots, use unchecked loops"),
            ("forge", "forge test --gas-report"),
        ),
        (
            (2, "[FAIL. Reason: EvmError: OutOfGas]"),
            (2, "Stack too deep when compiling inline assembly"),
        ),
        (
            ("transactions cost too much, make the contract cheaper to call", "domain", "any"),
            ("ran out of gas in tests after optimising, remind me why", "none", "fail"),
            ("storage packing for smart contract fees", "lang", "any"),
            ("fee reduction for token issuance", "full", "any"),
        ),
    ),
    F(
        "ad-users",
        "windows-admin",
        "powershell",
        "activedirectory",
        "other",
        (
            "bulk create {s} users from csv",
            "onboard {s} accounts in AD",
            "new joiners ({s}) -> AD + groups",
        ),
        ("sales", "interns", "contractors", "support"),
        (
            ("powershell", "Import-Csv new_{s}.csv"),
            ("powershell", "New-ADUser -SamAccountName"),
            ("powershell", "Add-ADGroupMember"),
            ("powershell", "Get-ADUser -Filter to verify"),
        ),
        (
            (1, "New-ADUser : The specified account already exists"),
            (2, "Add-ADGroupMember : Insufficient access rights"),
        ),
        (
            ("create many directory accounts from a spreadsheet", "domain", "any"),
            ("account already exists error during onboarding script, what then", "none", "fail"),
            ("script new employee logins on the domain controller", "lang", "any"),
            ("bulk identity provisioning", "full", "any"),
        ),
    ),
    F(
        "restic",
        "windows-admin",
        "bash",
        "restic",
        "other",
        ("offsite backup of {s} (restic)", "nightly restic job {s}", "backup {s} to b2 + prune"),
        ("nas", "mail server", "wiki", "file share"),
        (
            ("restic", "restic init -r b2:bucket:{s}"),
            ("restic", "restic backup --exclude-file"),
            ("restic", "restic forget --prune"),
            ("restic", "restic check"),
        ),
        (
            (1, "Fatal: unable to create lock in backend: repository is already locked"),
            (3, "pack 3fa2: not referenced in any index"),
        ),
        (
            ("copy our data to cloud storage every night with deduplication", "domain", "any"),
            ("the job could not get a lock on the repository, how was it cleared", "none", "fail"),
            ("snapshot retention policy", "lang", "any"),
            ("encrypted incremental backups", "full", "any"),
        ),
    ),
    F(
        "qt-hidpi",
        "desktop",
        "cpp",
        "qt",
        "debugging",
        (
            "blurry icons in {s} on hidpi",
            "{s}: hi-dpi scaling broken",
            "4k monitor makes {s} look fuzzy",
        ),
        ("settings dialog", "toolbar", "editor window", "tray menu"),
        (
            ("editor", "set Qt::AA_EnableHighDpiScaling and @2x icons for {s}"),
            ("qt", "QT_SCALE_FACTOR=1.5 ./app"),
            ("editor", "use QIcon with svg"),
        ),
        (
            (1, "qt.qpa.screen: QXcbScreen: failed to get the current screen resources"),
            (2, "icons still pixelated at 150% scaling"),
        ),
        (
            ("the app looks fuzzy on a retina display", "domain", "any"),
            ("fractional scaling left icons pixelated last time, what did we try", "none", "fail"),
            ("widget toolkit display scaling", "lang", "any"),
            ("crisp vector icons on high density screens", "full", "any"),
        ),
    ),
    F(
        "swift-menubar",
        "desktop",
        "swift",
        "appkit",
        "code_generation",
        ("menubar app for {s}", "status bar item showing {s}", "tiny mac menu bar thing for {s}"),
        ("cpu temp", "pomodoro", "vpn status", "clipboard history"),
        (
            ("xcode", "NSStatusItem with SwiftUI popover for {s}"),
            ("xcode", "LSUIElement=YES in Info.plist"),
            ("xcode", "notarize and staple"),
        ),
        (
            (2, "The staple and validate action failed! Error 65"),
            (0, "NSStatusBar item not shown: app terminated, no window"),
        ),
        (
            ("little icon at the top of the mac screen with a popup", "domain", "any"),
            ("notarization stapling failed, remind me what we did", "none", "fail"),
            ("agent app without dock icon", "lang", "any"),
            ("status item app", "full", "any"),
        ),
    ),
)

# queries about two families at once: (text, context kind, intent, {family: grade})
CROSS: tuple[tuple[str, str, str, dict[str, int]], ...] = (
    ("debug probe trouble with microcontrollers", "none", "fail", {"fw-flash": 2, "i2c-sensor": 1}),
    ("smart contract security and cost review", "domain", "any", {"reentrancy": 2, "gas-cut": 2}),
    ("sequencing data crunching from the shell", "lang", "any", {"vcf-filter": 2, "nf-align": 1}),
    ("command line media processing with ffmpeg", "none", "any", {"ffmpeg-hls": 2, "loudness": 1}),
    (
        "coordinate systems and distance queries for map data",
        "domain",
        "any",
        {"reproject": 2, "postgis-near": 2},
    ),
    (
        "what broke in our admin scripts for backups and accounts",
        "domain",
        "fail",
        {"restic": 2, "ad-users": 2},
    ),
    (
        "supervising long lived connections in network services",
        "none",
        "any",
        {"otp-supervise": 2, "tcp-proxy": 2},
    ),
    (
        "month end finance automation",
        "domain",
        "any",
        {"bank-recon": 2, "vba-pivot": 2, "cobol-batch": 1},
    ),
)
