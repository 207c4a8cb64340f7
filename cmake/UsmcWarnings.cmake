# Warnings for all of usmc; core/ adds conversion warnings of its own.
include(CheckCCompilerFlag)
set(USMC_WARNING_FLAGS
  -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes
  -Wwrite-strings -Wformat=2 -Wvla -Wundef -Wredundant-decls
  -Wno-format-nonliteral)
foreach(flag ${USMC_WARNING_FLAGS})
  string(MAKE_C_IDENTIFIER "HAVE${flag}" var)
  check_c_compiler_flag(${flag} ${var})
  if(${var})
    add_compile_options(${flag})
  endif()
endforeach()
if(USMC_WERROR)
  add_compile_options(-Werror)
endif()
