# frozen_string_literal: true

# Checks the Ruby version a Ruby app asks for against the stack's Ruby (the Ruby running this
# script), as Wharf's Ruby buildpack does before it installs anything. Reads, with size limits,
# only the app's Gemfile.lock (its RUBY VERSION section), Gemfile (its `ruby` line, read as
# text: nothing of the app is run here) and .ruby-version.
#
# Usage: ruby ruby_version.rb BUILD_DIR STACK
# Prints the detail lines that say what the app asks for; on a mismatch prints Heroku-style
# error lines (" !     ...") to stderr and exits 1.

MAX_FILE_BYTES = 1_000_000
# The Ruby on each of Wharf's stacks, for naming the stack that has what an app asks for.
STACK_RUBIES = { "debian-12" => "3.1.2", "debian-13" => "3.3.8" }.freeze

build_dir, stack = ARGV
stack_version = Gem::Version.new(RUBY_VERSION)
stack_minor = stack_version.segments.first(2).join(".")

def fail_build(*lines)
  lines.each { |line| warn " !     #{line}" }
  exit 1
end

def read_app_file(build_dir, name)
  path = File.join(build_dir, name)
  return nil unless File.file?(path) && !File.symlink?(path)
  File.open(path, "rb") { |file| file.read(MAX_FILE_BYTES) }.to_s.force_encoding("UTF-8").scrub
end

# What each file asks for: [where, the text as written, a Gem::Requirement].
asks = []

if (lock = read_app_file(build_dir, "Gemfile.lock"))
  section = lock[/^RUBY VERSION\n((?:[ \t]+.*\n?)+)/, 1]
  if section
    written = section.strip
    match = written.match(/\Aruby (\d+\.\d+\.\d+)(?:p-?\d+)?(?: \((\w+) [^)]*\))?\z/)
    if match.nil?
      fail_build("Gemfile.lock's RUBY VERSION says \"#{written}\", which this buildpack does not understand.",
                 "Run 'bundle lock' with Ruby #{stack_version} and commit Gemfile.lock.")
    end
    if match[2] && match[2] != "ruby"
      fail_build("Gemfile.lock asks for #{written}: this stack (#{stack}) has only MRI Ruby #{stack_version}.",
                 "Remove the engine: option from the Gemfile's ruby line, run 'bundle lock' and commit Gemfile.lock.")
    end
    asks << ["Gemfile.lock", written.delete_prefix("ruby "), Gem::Requirement.new("= #{match[1]}")]
  end
end

gemfile = read_app_file(build_dir, "Gemfile").to_s
ruby_version_file = nil
gemfile.each_line do |line|
  next unless line =~ /\A\s*ruby[\s(]/
  rest = line.sub(/\A\s*ruby\s*\(?\s*/, "").sub(/\s+#.*\z/, "").strip
  if rest =~ /\Afile:\s*(["'])([^"']*)\1/
    ruby_version_file = Regexp.last_match(2)
    next
  end
  if rest =~ /engine:/
    fail_build("The Gemfile asks for another Ruby engine (#{line.strip}): this stack (#{stack}) has only MRI Ruby #{stack_version}.",
               "Remove the engine: option from the Gemfile's ruby line, run 'bundle lock' and commit Gemfile.lock.")
  end
  # `ruby RUBY_VERSION` and other expressions ask for whatever runs: nothing to check.
  next unless rest.start_with?('"', "'")
  requirements = rest.scan(/(["'])([^"']*)\1/).map(&:last)
  begin
    requirement = Gem::Requirement.create(requirements)
  rescue Gem::Requirement::BadRequirementError, ArgumentError
    fail_build("The Gemfile's ruby line (#{line.strip}) does not name a Ruby version.",
               "Write a version or a requirement there, such as ruby \"#{stack_version}\" or ruby \"~> #{stack_minor}\", or remove the line.")
  end
  asks << ["Gemfile", requirements.map(&:inspect).join(", "), requirement]
  break
end

# A .ruby-version of "3.1" asks for any 3.1 release, "3.1.2" (also "ruby-3.1.2", "3.1.2p20")
# for that one.
version_file = ruby_version_file || ".ruby-version"
if (text = read_app_file(build_dir, version_file))
  written = text.lines.map(&:strip).find { |line| !line.empty? && !line.start_with?("#") }.to_s
  match = written.match(/\A(?:ruby-)?(\d+)\.(\d+)(?:\.(\d+))?(?:-?p\d+)?\z/)
  if match.nil?
    fail_build("#{version_file} says \"#{written}\", which is not a Ruby version.",
               "Write a version such as #{stack_minor} or #{stack_version} in it, or remove it.")
  end
  requirement = if match[3]
                  Gem::Requirement.new("= #{match[1]}.#{match[2]}.#{match[3]}")
                else
                  Gem::Requirement.new("~> #{match[1]}.#{match[2]}.0")
                end
  asks << [version_file, written, requirement]
elsif ruby_version_file
  fail_build("The Gemfile reads the Ruby version from #{ruby_version_file}, which the app does not have.",
             "Commit #{ruby_version_file} or write the version in the Gemfile's ruby line.")
end

asks.each do |where, written, requirement|
  if requirement.satisfied_by?(stack_version)
    puts "       #{where} asks for Ruby #{written}: satisfied"
    next
  end
  others = STACK_RUBIES.reject { |name, _| name == stack }
                       .select { |_, version| requirement.satisfied_by?(Gem::Version.new(version)) }
  hint = others.map do |name, version|
    "Ruby #{Gem::Version.new(version).segments.first(2).join('.')} is on the #{name} stack: wharf stack:set #{name}"
  end
  fail_build("#{where} asks for Ruby #{written}, but this stack (#{stack}) has only Ruby #{stack_version}.",
             "Wharf builds with the stack's Ruby and downloads no other (there is no source for Rubies here).",
             *hint,
             "Or change #{where} to ask for Ruby #{stack_version} (or \"~> #{stack_minor}\") and push again.")
end
