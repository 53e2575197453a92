# Install rules: headers, the library, a CMake package (find_package(mproc) gives mproc::mproc) and
# a pkg-config file. tests/consume/find_package/ is the project that checks them.
include(CMakePackageConfigHelpers)

set(MPROC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)

install(TARGETS mproc EXPORT mprocTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/mproc DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(EXPORT mprocTargets NAMESPACE mproc:: DESTINATION ${MPROC_CMAKE_DIR})

# The config asks for cereal the way this build found it.
if(cereal_FOUND)
  set(MPROC_FIND_CEREAL "find_dependency(cereal CONFIG)")
else()
  set(MPROC_FIND_CEREAL "# cereal: headers in ${CEREAL_INCLUDE_DIR}, recorded in the target")
endif()
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/mprocConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/mprocConfig.cmake INSTALL_DESTINATION ${MPROC_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/mprocConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mprocConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/mprocConfigVersion.cmake
        DESTINATION ${MPROC_CMAKE_DIR})

# pkg-config: relative to the .pc file's own directory, so the tree can be installed with
# `cmake --install --prefix` anywhere (or moved); absolute GNUInstallDirs paths are kept as given.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(MPROC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(MPROC_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(MPROC_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _mproc_pc_up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  set(MPROC_PC_PREFIX "\${pcfiledir}/${_mproc_pc_up}")
  set(MPROC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(MPROC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/mproc.pc.in ${CMAKE_CURRENT_BINARY_DIR}/mproc.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mproc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
