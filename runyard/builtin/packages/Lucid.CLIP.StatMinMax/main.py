from runyard.builtin import lucid

lucid.stat_min_max_main()
