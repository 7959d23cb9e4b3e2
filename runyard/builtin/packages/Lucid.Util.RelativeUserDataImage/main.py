from runyard.builtin import relative

relative.main()
