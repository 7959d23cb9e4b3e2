from runyard.builtin import lucid

lucid.threshold_main()
